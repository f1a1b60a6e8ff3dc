#ifndef CCURLSHIM_H
#define CCURLSHIM_H

// libcurl is loaded on first use with dlopen("libcurl.so.4"), not linked: a process that never
// touches the network (ping, profile edits) does not map or relocate libcurl and its ~30
// dependencies. <curl/curl.h> (on the default include path) supplies the types and constants;
// Swift must call only the functions declared below, never a curl_* function itself (nothing
// links -lcurl, so such a call would not link).
//
// curl_easy_setopt/getinfo are variadic and the CURLAUTH_* macros are casts, so neither
// imports into Swift: the ccurl_* wrappers give each argument type its own function.

#include <curl/curl.h>
#include <stddef.h>

/// Loads libcurl (once, thread-safe) and runs curl_global_init(CURL_GLOBAL_ALL). Returns NULL
/// when libcurl is usable, otherwise why it is not (dlerror's text, or the missing function).
/// The answer never changes afterwards. Every function below loads libcurl itself; when it
/// cannot be loaded they fail (CURLE_FAILED_INIT, NULL, ...) instead of crashing.
const char *sw_curl_load(void);

// The libcurl functions the HTTP module uses, each called through the table sw_curl_load fills.
CURL *sw_curl_easy_init(void);
void sw_curl_easy_cleanup(CURL *handle);
const char *sw_curl_easy_strerror(CURLcode code);
struct curl_slist *sw_curl_slist_append(struct curl_slist *list, const char *string);
void sw_curl_slist_free_all(struct curl_slist *list);

CURLM *sw_curl_multi_init(void);
CURLMcode sw_curl_multi_cleanup(CURLM *multi);
CURLMcode sw_curl_multi_add_handle(CURLM *multi, CURL *handle);
CURLMcode sw_curl_multi_remove_handle(CURLM *multi, CURL *handle);
CURLMcode sw_curl_multi_perform(CURLM *multi, int *running_handles);
CURLMsg *sw_curl_multi_info_read(CURLM *multi, int *msgs_in_queue);
CURLMcode sw_curl_multi_poll(CURLM *multi, struct curl_waitfd *extra_fds,
                             unsigned int extra_nfds, int timeout_ms, int *ret);
CURLMcode sw_curl_multi_wakeup(CURLM *multi);

CURLU *sw_curl_url(void);
void sw_curl_url_cleanup(CURLU *handle);
CURLUcode sw_curl_url_set(CURLU *handle, CURLUPart what, const char *part, unsigned int flags);
CURLUcode sw_curl_url_get(CURLU *handle, CURLUPart what, char **part, unsigned int flags);
void sw_curl_free(void *pointer);

/// The process-wide share handle that keeps resumable TLS sessions (CURL_LOCK_DATA_SSL_SESSION,
/// with locks) for CURLOPT_SHARE; NULL when libcurl cannot make one.
CURLSH *sw_curl_tls_session_share(void);

/// Signature shared by CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION.
typedef size_t (*ccurl_data_callback)(char *data, size_t size, size_t count, void *userdata);

CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, const void *value);
CURLcode ccurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ccurl_easy_setopt_callback(CURL *handle, CURLoption option, ccurl_data_callback value);

/// CURLOPT_DEBUGFUNCTION's signature (curl_debug_callback).
typedef int (*ccurl_debug_callback)(CURL *handle, curl_infotype type, char *data, size_t size, void *userdata);
CURLcode ccurl_easy_setopt_debug_callback(CURL *handle, ccurl_debug_callback value);
CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode ccurl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode ccurl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode ccurl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value);
/// For pointer results such as CURLINFO_CERTINFO (a struct curl_certinfo *).
CURLcode ccurl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value);

CURLMcode ccurl_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

unsigned long ccurl_auth_basic(void);
unsigned long ccurl_auth_ntlm(void);
unsigned long ccurl_auth_negotiate(void);
unsigned long ccurl_auth_bearer(void);

/// Names the calling thread (shows in gdb, top -H); at most 15 characters.
void ccurl_name_current_thread(const char *name);

#endif
