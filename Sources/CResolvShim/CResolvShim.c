#include "CResolvShim.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Since glibc 2.26, res_ninit keeps an IPv4 nameserver in nsaddr_list[i] and an IPv6 one in a
// malloc'ed _u._ext.nsaddrs[i] with nsaddr_list[i].sin_family = 0; res_nsend reads either, and
// res_nclose frees nsaddrs[0..nscount). Called right after res_ninit, before any send, so no
// socket is open yet.
int sw_res_use_server(res_state state, const struct sockaddr *address, socklen_t length) {
    struct sockaddr_in6 *copy6 = NULL;
    if (address->sa_family == AF_INET6 && length == sizeof(struct sockaddr_in6)) {
        copy6 = malloc(sizeof *copy6);
        if (copy6 == NULL) return -1;
        memcpy(copy6, address, sizeof *copy6);
    } else if (!(address->sa_family == AF_INET && length == sizeof(struct sockaddr_in))) {
        return -1;
    }
    for (int i = 0; i < MAXNS; i++) {
        free(state->_u._ext.nsaddrs[i]);
        state->_u._ext.nsaddrs[i] = NULL;
        state->_u._ext.nssocks[i] = -1;
    }
    state->_u._ext.nscount = 0;  // res_nsend rebuilds its copy of the list
    memset(&state->nsaddr_list[0], 0, sizeof state->nsaddr_list[0]);
    if (copy6 != NULL) {
        state->_u._ext.nsaddrs[0] = copy6;
    } else {
        memcpy(&state->nsaddr_list[0], address, sizeof(struct sockaddr_in));
    }
    state->nscount = 1;
    return 0;
}

int sw_res_server_text(res_state state, int index, char *buffer, size_t size) {
    if (index < 0 || index >= state->nscount || index >= MAXNS || size == 0) return -1;
    char host[INET6_ADDRSTRLEN];
    unsigned port;
    const struct sockaddr_in6 *v6 = state->_u._ext.nsaddrs[index];
    if (state->nsaddr_list[index].sin_family == 0 && v6 != NULL) {
        if (inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host) == NULL) return -1;
        port = ntohs(v6->sin6_port);
        if (port == NS_DEFAULTPORT) snprintf(buffer, size, "%s", host);
        else snprintf(buffer, size, "[%s]:%u", host, port);
    } else {
        const struct sockaddr_in *v4 = &state->nsaddr_list[index];
        if (inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host) == NULL) return -1;
        port = ntohs(v4->sin_port);
        if (port == NS_DEFAULTPORT) snprintf(buffer, size, "%s", host);
        else snprintf(buffer, size, "%s:%u", host, port);
    }
    return 0;
}
