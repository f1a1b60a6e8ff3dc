#include "CLibcryptoShim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

// Every libcrypto function the module calls, typed from OpenSSL's own prototypes so a call
// through the table is checked like a direct call.
#define SW_CRYPTO_FUNCTIONS(X)                                                                     \
    X(BIO_new_mem_buf)                                                                             \
    X(BIO_free)                                                                                    \
    X(PEM_read_bio_X509)                                                                           \
    X(X509_free)                                                                                   \
    X(i2d_X509)                                                                                    \
    X(X509_get_X509_PUBKEY)                                                                        \
    X(i2d_X509_PUBKEY)                                                                             \
    X(X509_get0_notAfter)                                                                          \
    X(ASN1_TIME_to_tm)                                                                             \
    X(SHA256)                                                                                      \
    X(CRYPTO_free)                                                                                 \
    X(BN_bin2bn)                                                                                   \
    X(BN_free)                                                                                     \
    X(OSSL_PARAM_BLD_new)                                                                          \
    X(OSSL_PARAM_BLD_free)                                                                         \
    X(OSSL_PARAM_BLD_push_BN)                                                                      \
    X(OSSL_PARAM_BLD_to_param)                                                                     \
    X(OSSL_PARAM_free)                                                                             \
    X(EVP_PKEY_CTX_new_from_name)                                                                  \
    X(EVP_PKEY_CTX_free)                                                                           \
    X(EVP_PKEY_fromdata_init)                                                                      \
    X(EVP_PKEY_fromdata)                                                                           \
    X(EVP_PKEY_free)                                                                               \
    X(EVP_MD_CTX_new)                                                                              \
    X(EVP_MD_CTX_free)                                                                             \
    X(EVP_sha256)                                                                                  \
    X(EVP_DigestVerifyInit)                                                                        \
    X(EVP_DigestVerify)                                                                            \
    X(ERR_clear_error)                                                                             \
    X(X509_get_signature_nid)                                                                      \
    X(OBJ_find_sigid_algs)                                                                         \
    X(OBJ_nid2sn)                                                                                  \
    X(EVP_get_digestbyname)                                                                        \
    X(X509_digest)

static struct {
#define X(name) __typeof__(name) *name;
    SW_CRYPTO_FUNCTIONS(X)
#undef X
} crypto;

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static int crypto_ready;          // written once inside pthread_once, read after it
static char crypto_failure[512];  // why libcrypto is not usable, when crypto_ready is 0

static void crypto_load_once(void) {
    void *library = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(crypto_failure, sizeof crypto_failure, "%s", reason != NULL ? reason : "dlopen failed");
        return;
    }
#define X(name)                                                                                    \
    crypto.name = (__typeof__(name) *)dlsym(library, #name);                                       \
    if (crypto.name == NULL) {                                                                     \
        snprintf(crypto_failure, sizeof crypto_failure, "libcrypto.so.3 has no %s", #name);        \
        dlclose(library);                                                                          \
        memset(&crypto, 0, sizeof crypto);                                                         \
        return;                                                                                    \
    }
    SW_CRYPTO_FUNCTIONS(X)
#undef X
    crypto_ready = 1;
}

const char *swcrypto_load(void) {
    pthread_once(&crypto_once, crypto_load_once);
    return crypto_ready ? NULL : crypto_failure;
}

int swcrypto_certificate_inspect(const char *pem, size_t length, swcrypto_certificate_facts *facts) {
    if (pem == NULL || facts == NULL || length > 1024 * 1024) return -1;
    memset(facts, 0, sizeof(*facts));
    if (swcrypto_load() != NULL) return -1;

    BIO *bio = crypto.BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return -1;
    X509 *certificate = crypto.PEM_read_bio_X509(bio, NULL, NULL, NULL);
    crypto.BIO_free(bio);
    if (certificate == NULL) {
        crypto.ERR_clear_error();
        return -1;
    }

    int status = -1;
    unsigned char *der = NULL;
    unsigned char *spki = NULL;
    int der_length = crypto.i2d_X509(certificate, &der);
    int spki_length = crypto.i2d_X509_PUBKEY(crypto.X509_get_X509_PUBKEY(certificate), &spki);
    struct tm expiry;
    if (der_length > 0 && spki_length > 0
        && crypto.ASN1_TIME_to_tm(crypto.X509_get0_notAfter(certificate), &expiry) == 1) {
        crypto.SHA256(der, (size_t)der_length, facts->certificate_sha256);
        crypto.SHA256(spki, (size_t)spki_length, facts->public_key_sha256);
        facts->not_after = (long long)timegm(&expiry);
        status = 0;
    }
    // OPENSSL_free is a macro for CRYPTO_free(pointer, OPENSSL_FILE, OPENSSL_LINE).
    crypto.CRYPTO_free(der, __FILE__, __LINE__);
    crypto.CRYPTO_free(spki, __FILE__, __LINE__);
    crypto.X509_free(certificate);
    return status;
}

// The key is built with EVP_PKEY_fromdata (OpenSSL 3's provider API) rather than the
// deprecated RSA_set0_key; EVP_DigestVerify with an RSA key defaults to PKCS #1 v1.5 padding
// and compares the whole encoded block, DigestInfo included.
int swcrypto_sha256(const uint8_t *data, size_t length, uint8_t digest[32]) {
    if (swcrypto_load() != NULL) return -1;
    // SHA256() with a NULL data pointer and length 0 hashes the empty string.
    crypto.SHA256(data, length, digest);
    return 0;
}

int swcrypto_rsa_sha256_verify(const uint8_t *modulus, size_t modulus_length,
                               const uint8_t *exponent, size_t exponent_length,
                               const uint8_t *message, size_t message_length,
                               const uint8_t *signature, size_t signature_length) {
    if (swcrypto_load() != NULL) return -1;
    if (modulus_length == 0 || modulus_length > 2048 || exponent_length == 0 || exponent_length > 64) return 0;

    int valid = 0;
    BIGNUM *n = crypto.BN_bin2bn(modulus, (int)modulus_length, NULL);
    BIGNUM *e = crypto.BN_bin2bn(exponent, (int)exponent_length, NULL);
    OSSL_PARAM_BLD *builder = crypto.OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *key_context = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *digest_context = NULL;
    if (n == NULL || e == NULL || builder == NULL) goto done;
    if (crypto.OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, n) != 1
        || crypto.OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, e) != 1) goto done;
    params = crypto.OSSL_PARAM_BLD_to_param(builder);
    key_context = crypto.EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (params == NULL || key_context == NULL) goto done;
    if (crypto.EVP_PKEY_fromdata_init(key_context) != 1
        || crypto.EVP_PKEY_fromdata(key_context, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) goto done;
    digest_context = crypto.EVP_MD_CTX_new();
    if (digest_context == NULL) goto done;
    if (crypto.EVP_DigestVerifyInit(digest_context, NULL, crypto.EVP_sha256(), NULL, key) != 1) goto done;
    valid = crypto.EVP_DigestVerify(digest_context, signature, signature_length, message, message_length) == 1;

done:
    crypto.EVP_MD_CTX_free(digest_context);
    crypto.EVP_PKEY_free(key);
    crypto.EVP_PKEY_CTX_free(key_context);
    crypto.OSSL_PARAM_free(params);
    crypto.OSSL_PARAM_BLD_free(builder);
    crypto.BN_free(n);
    crypto.BN_free(e);
    // Failures leave reasons on OpenSSL's per-thread error queue; libcurl on the same thread
    // would read them as its own.
    crypto.ERR_clear_error();
    return valid;
}

int swcrypto_tls_server_end_point(const char *pem, size_t length, uint8_t digest[64], size_t *digest_length) {
    if (pem == NULL || digest == NULL || digest_length == NULL || length > 1024 * 1024) return -1;
    *digest_length = 0;
    if (swcrypto_load() != NULL) return -1;
    BIO *bio = crypto.BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return -1;
    X509 *certificate = crypto.PEM_read_bio_X509(bio, NULL, NULL, NULL);
    crypto.BIO_free(bio);
    if (certificate == NULL) {
        crypto.ERR_clear_error();
        return -1;
    }
    // RFC 5929 §4.1: the certificate's signature hash, except MD5 and SHA-1 become SHA-256.
    // A signature without a separate hash (Ed25519) has none to reuse: SHA-256 as well.
    int hash_nid = NID_undef;
    const EVP_MD *md = NULL;
    if (crypto.OBJ_find_sigid_algs(crypto.X509_get_signature_nid(certificate), &hash_nid, NULL) == 1
        && hash_nid != NID_undef && hash_nid != NID_md5 && hash_nid != NID_sha1 && hash_nid != NID_md5_sha1) {
        const char *name = crypto.OBJ_nid2sn(hash_nid);
        md = name != NULL ? crypto.EVP_get_digestbyname(name) : NULL;
    }
    if (md == NULL) md = crypto.EVP_sha256();
    unsigned int size = 0;
    int status = crypto.X509_digest(certificate, md, digest, &size) == 1 && size <= 64 ? 0 : -1;
    if (status == 0) *digest_length = size;
    crypto.X509_free(certificate);
    crypto.ERR_clear_error();
    return status;
}
