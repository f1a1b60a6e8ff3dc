#define _GNU_SOURCE  // pthread_setname_np
#include "CCurlShim.h"

#include <pthread.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <string.h>
#include <time.h>

CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_easy_setopt_callback(CURL *handle, CURLoption option, ccurl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode ccurl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode ccurl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode ccurl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode ccurl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLMcode ccurl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

unsigned long ccurl_auth_basic(void) { return CURLAUTH_BASIC; }
unsigned long ccurl_auth_ntlm(void) { return CURLAUTH_NTLM; }
unsigned long ccurl_auth_negotiate(void) { return CURLAUTH_NEGOTIATE; }
unsigned long ccurl_auth_bearer(void) { return CURLAUTH_BEARER; }

int ccurl_certificate_inspect(const char *pem, size_t length, ccurl_certificate_facts *facts) {
    if (pem == NULL || facts == NULL || length > 1024 * 1024) return -1;
    memset(facts, 0, sizeof(*facts));

    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return -1;
    X509 *certificate = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (certificate == NULL) return -1;

    int status = -1;
    unsigned char *der = NULL;
    unsigned char *spki = NULL;
    int der_length = i2d_X509(certificate, &der);
    int spki_length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(certificate), &spki);
    struct tm expiry;
    if (der_length > 0 && spki_length > 0
        && ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &expiry) == 1) {
        SHA256(der, (size_t)der_length, facts->certificate_sha256);
        SHA256(spki, (size_t)spki_length, facts->public_key_sha256);
        facts->not_after = (long long)timegm(&expiry);
        status = 0;
    }
    OPENSSL_free(der);
    OPENSSL_free(spki);
    X509_free(certificate);
    return status;
}

void ccurl_name_current_thread(const char *name) {
    pthread_setname_np(pthread_self(), name);
}
