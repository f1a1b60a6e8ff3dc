#ifndef CCURLSHIM_H
#define CCURLSHIM_H

// curl_easy_setopt/getinfo are variadic and the CURLAUTH_* macros are casts, so
// neither imports into Swift. These wrappers give each argument type its own function.

#include <curl/curl.h>
#include <stddef.h>

/// Signature shared by CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION.
typedef size_t (*ccurl_data_callback)(char *data, size_t size, size_t count, void *userdata);

CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, const void *value);
CURLcode ccurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ccurl_easy_setopt_callback(CURL *handle, CURLoption option, ccurl_data_callback value);

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

/// Facts about one X.509 certificate, read with OpenSSL.
typedef struct {
    unsigned char certificate_sha256[32];  // SHA-256 of the DER certificate
    unsigned char public_key_sha256[32];   // SHA-256 of the DER SubjectPublicKeyInfo
    long long not_after;                   // seconds since 1970 (UTC)
} ccurl_certificate_facts;

/// Parses the first certificate in `pem` (length `length`). Returns 0 on success.
int ccurl_certificate_inspect(const char *pem, size_t length, ccurl_certificate_facts *facts);

/// Names the calling thread (shows in gdb, top -H); at most 15 characters.
void ccurl_name_current_thread(const char *name);

#endif
