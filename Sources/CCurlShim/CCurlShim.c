#define _GNU_SOURCE            // pthread_setname_np
#define CURL_DISABLE_TYPECHECK // curl_easy_setopt & co. stay plain functions (no macros)
#include "CCurlShim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// MARK: libcurl, loaded on first use

// Every libcurl function the module calls. The table's entries have the exact types of the
// prototypes in <curl/curl.h>, so a call through it is checked like a direct call.
#define SW_CURL_FUNCTIONS(X)                                                                       \
    X(curl_global_init)                                                                            \
    X(curl_easy_init)                                                                              \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_strerror)                                                                          \
    X(curl_slist_append)                                                                           \
    X(curl_slist_free_all)                                                                         \
    X(curl_multi_init)                                                                             \
    X(curl_multi_cleanup)                                                                          \
    X(curl_multi_setopt)                                                                           \
    X(curl_multi_add_handle)                                                                       \
    X(curl_multi_remove_handle)                                                                    \
    X(curl_multi_perform)                                                                          \
    X(curl_multi_info_read)                                                                        \
    X(curl_multi_poll)                                                                             \
    X(curl_multi_wakeup)                                                                           \
    X(curl_url)                                                                                    \
    X(curl_url_cleanup)                                                                            \
    X(curl_url_set)                                                                                \
    X(curl_url_get)                                                                                \
    X(curl_share_init)                                                                             \
    X(curl_share_setopt)                                                                           \
    X(curl_free)

static struct {
#define X(name) __typeof__(name) *name;
    SW_CURL_FUNCTIONS(X)
#undef X
} curl;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ready;            // written once inside pthread_once, read after it
static char curl_failure[512];    // why libcurl is not usable, when curl_ready is 0

static void curl_load_once(void) {
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(curl_failure, sizeof curl_failure, "%s", reason != NULL ? reason : "dlopen failed");
        return;
    }
#define X(name)                                                                                    \
    curl.name = (__typeof__(name) *)dlsym(library, #name);                                         \
    if (curl.name == NULL) {                                                                       \
        snprintf(curl_failure, sizeof curl_failure, "libcurl.so.4 has no %s (libcurl 7.68 or later is needed)", #name); \
        dlclose(library);                                                                          \
        memset(&curl, 0, sizeof curl);                                                             \
        return;                                                                                    \
    }
    SW_CURL_FUNCTIONS(X)
#undef X
    // curl_global_init is not thread-safe on every build; here it runs once, before any other
    // libcurl call. Its result was never checked: a failure shows up in the first transfer.
    curl.curl_global_init(CURL_GLOBAL_ALL);
    curl_ready = 1;
}

static int curl_loaded(void) {
    pthread_once(&curl_once, curl_load_once);
    return curl_ready;
}

const char *sw_curl_load(void) {
    return curl_loaded() ? NULL : curl_failure;
}

// MARK: TLS sessions shared across transfers

// libcurl 7.x keeps resumable TLS sessions per easy handle, and every request here is a new
// easy handle: without a share handle nothing is ever resumed. One process-wide share holds
// them; libcurl resumes a session only for the same host, port, connect-to target and TLS
// configuration (CA, verification, pin: vtls.c Curl_ssl_getsessionid). Easy handles are set up
// on callers' threads and run on the driver thread, so the share has real locks.
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
static CURLSH *shared_sessions;
static pthread_once_t share_once = PTHREAD_ONCE_INIT;

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *user) {
    (void)handle, (void)access, (void)user;
    pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *user) {
    (void)handle, (void)user;
    pthread_mutex_unlock(&share_locks[data]);
}

static void share_init_once(void) {
    if (!curl_loaded()) return;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&share_locks[i], NULL);
    CURLSH *share = curl.curl_share_init();
    if (share == NULL) return;
    if (curl.curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK
        || curl.curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK
        || curl.curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        return; // never freed either way: it lives as long as the process
    }
    shared_sessions = share;
}

CURLSH *sw_curl_tls_session_share(void) {
    pthread_once(&share_once, share_init_once);
    return shared_sessions;
}

CURL *sw_curl_easy_init(void) {
    return curl_loaded() ? curl.curl_easy_init() : NULL;
}

void sw_curl_easy_cleanup(CURL *handle) {
    if (curl_loaded()) curl.curl_easy_cleanup(handle);
}

const char *sw_curl_easy_strerror(CURLcode code) {
    return curl_loaded() ? curl.curl_easy_strerror(code) : "libcurl (libcurl.so.4) cannot be loaded";
}

struct curl_slist *sw_curl_slist_append(struct curl_slist *list, const char *string) {
    return curl_loaded() ? curl.curl_slist_append(list, string) : NULL;
}

void sw_curl_slist_free_all(struct curl_slist *list) {
    if (curl_loaded()) curl.curl_slist_free_all(list);
}

CURLM *sw_curl_multi_init(void) {
    return curl_loaded() ? curl.curl_multi_init() : NULL;
}

CURLMcode sw_curl_multi_cleanup(CURLM *multi) {
    return curl_loaded() ? curl.curl_multi_cleanup(multi) : CURLM_INTERNAL_ERROR;
}

CURLMcode sw_curl_multi_add_handle(CURLM *multi, CURL *handle) {
    return curl_loaded() ? curl.curl_multi_add_handle(multi, handle) : CURLM_INTERNAL_ERROR;
}

CURLMcode sw_curl_multi_remove_handle(CURLM *multi, CURL *handle) {
    return curl_loaded() ? curl.curl_multi_remove_handle(multi, handle) : CURLM_INTERNAL_ERROR;
}

CURLMcode sw_curl_multi_perform(CURLM *multi, int *running_handles) {
    return curl_loaded() ? curl.curl_multi_perform(multi, running_handles) : CURLM_INTERNAL_ERROR;
}

CURLMsg *sw_curl_multi_info_read(CURLM *multi, int *msgs_in_queue) {
    return curl_loaded() ? curl.curl_multi_info_read(multi, msgs_in_queue) : NULL;
}

CURLMcode sw_curl_multi_poll(CURLM *multi, struct curl_waitfd *extra_fds, unsigned int extra_nfds,
                             int timeout_ms, int *ret) {
    return curl_loaded() ? curl.curl_multi_poll(multi, extra_fds, extra_nfds, timeout_ms, ret)
                         : CURLM_INTERNAL_ERROR;
}

CURLMcode sw_curl_multi_wakeup(CURLM *multi) {
    return curl_loaded() ? curl.curl_multi_wakeup(multi) : CURLM_INTERNAL_ERROR;
}

CURLU *sw_curl_url(void) {
    return curl_loaded() ? curl.curl_url() : NULL;
}

void sw_curl_url_cleanup(CURLU *handle) {
    if (curl_loaded()) curl.curl_url_cleanup(handle);
}

CURLUcode sw_curl_url_set(CURLU *handle, CURLUPart what, const char *part, unsigned int flags) {
    return curl_loaded() ? curl.curl_url_set(handle, what, part, flags) : CURLUE_BAD_HANDLE;
}

CURLUcode sw_curl_url_get(CURLU *handle, CURLUPart what, char **part, unsigned int flags) {
    return curl_loaded() ? curl.curl_url_get(handle, what, part, flags) : CURLUE_BAD_HANDLE;
}

void sw_curl_free(void *pointer) {
    if (curl_loaded()) curl.curl_free(pointer);
}

// MARK: Non-variadic setopt/getinfo

CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_loaded() ? curl.curl_easy_setopt(handle, option, value) : CURLE_FAILED_INIT;
}

CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_loaded() ? curl.curl_easy_setopt(handle, option, value) : CURLE_FAILED_INIT;
}

CURLcode ccurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_loaded() ? curl.curl_easy_setopt(handle, option, value) : CURLE_FAILED_INIT;
}

CURLcode ccurl_easy_setopt_callback(CURL *handle, CURLoption option, ccurl_data_callback value) {
    return curl_loaded() ? curl.curl_easy_setopt(handle, option, value) : CURLE_FAILED_INIT;
}

CURLcode ccurl_easy_setopt_debug_callback(CURL *handle, ccurl_debug_callback value) {
    return curl_loaded() ? curl.curl_easy_setopt(handle, CURLOPT_DEBUGFUNCTION, value) : CURLE_FAILED_INIT;
}

CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_loaded() ? curl.curl_easy_getinfo(handle, info, value) : CURLE_FAILED_INIT;
}

CURLcode ccurl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_loaded() ? curl.curl_easy_getinfo(handle, info, value) : CURLE_FAILED_INIT;
}

CURLcode ccurl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_loaded() ? curl.curl_easy_getinfo(handle, info, value) : CURLE_FAILED_INIT;
}

CURLcode ccurl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    return curl_loaded() ? curl.curl_easy_getinfo(handle, info, value) : CURLE_FAILED_INIT;
}

CURLcode ccurl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_loaded() ? curl.curl_easy_getinfo(handle, info, value) : CURLE_FAILED_INIT;
}

CURLMcode ccurl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_loaded() ? curl.curl_multi_setopt(multi, option, value) : CURLM_INTERNAL_ERROR;
}

unsigned long ccurl_auth_basic(void) { return CURLAUTH_BASIC; }
unsigned long ccurl_auth_ntlm(void) { return CURLAUTH_NTLM; }
unsigned long ccurl_auth_negotiate(void) { return CURLAUTH_NEGOTIATE; }
unsigned long ccurl_auth_bearer(void) { return CURLAUTH_BEARER; }

void ccurl_name_current_thread(const char *name) {
    pthread_setname_np(pthread_self(), name);
}
