#ifndef CRESOLVSHIM_H
#define CRESOLVSHIM_H

// glibc's stub resolver for the DNS module: res_ninit / res_nmkquery / res_nsend (libc) on a
// private `struct __res_state` per lookup, and ns_initparse / ns_parserr / dn_expand to read the
// answer (ns_* live in libresolv, linked by Package.swift). <resolv.h> renames res_ninit and
// res_nclose with macros and ns_msg_count is a macro, none of which Swift imports: the
// functions below give them plain names. The one real function, sw_res_use_server, puts a
// server given on the command line (IPv4 or IPv6) into the state the way glibc's own
// res_ninit stores a resolv.conf nameserver.

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stddef.h>
#include <sys/socket.h>

/// res_ninit: reads /etc/resolv.conf (every nameserver, IPv4 and IPv6, and its options) into
/// `state`, which must be zeroed. 0 on success. Pair with sw_res_nclose.
static inline int sw_res_ninit(res_state state) { return res_ninit(state); }

/// res_nclose: closes the state's sockets and frees what res_ninit and sw_res_use_server
/// allocated.
static inline void sw_res_nclose(res_state state) { res_nclose(state); }

/// How many records `section` of a parsed message has.
static inline int sw_ns_msg_count(const ns_msg *message, ns_sect section) {
    return ns_msg_count(*message, section);
}

/// Replaces every nameserver of an initialised state with `address` (a sockaddr_in or a
/// sockaddr_in6 of `length` bytes). -1 when the family is neither or memory runs out.
int sw_res_use_server(res_state state, const struct sockaddr *address, socklen_t length);

/// The state's nameserver number `index` as text ("10.0.0.2", "[::1]:5353": the port only
/// when it is not 53) into `buffer`. -1 when there is no such server.
int sw_res_server_text(res_state state, int index, char *buffer, size_t size);

#endif
