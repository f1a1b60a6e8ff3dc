#ifndef CLIBCRYPTOSHIM_H
#define CLIBCRYPTOSHIM_H

// OpenSSL's libcrypto is loaded on first use with dlopen("libcrypto.so.3"), not linked: a
// process that never checks a signature or a certificate does not map it. It is the libcrypto
// libcurl links (Debian's libcurl4 is built on OpenSSL 3), so by the time a token or a server
// certificate is checked it is usually loaded already.

#include <stddef.h>
#include <stdint.h>

/// Facts about one X.509 certificate.
typedef struct {
    unsigned char certificate_sha256[32];  // SHA-256 of the DER certificate
    unsigned char public_key_sha256[32];   // SHA-256 of the DER SubjectPublicKeyInfo
    long long not_after;                   // seconds since 1970 (UTC)
} swcrypto_certificate_facts;

/// NULL when libcrypto is usable, otherwise why not (dlerror's text or the missing function).
const char *swcrypto_load(void);

/// Parses the first certificate in `pem` (`length` bytes). 0 on success, -1 when it cannot be
/// parsed or libcrypto is missing.
int swcrypto_certificate_inspect(const char *pem, size_t length, swcrypto_certificate_facts *facts);

/// SHA-256 of `length` bytes into `digest` (32 bytes). 0 on success, -1 when libcrypto is missing.
int swcrypto_sha256(const uint8_t *data, size_t length, uint8_t digest[32]);

/// RSASSA-PKCS1-v1_5 with SHA-256 (JWS "RS256"): checks `signature` over `message` with the
/// public key (`modulus`, `exponent`: unsigned big-endian). 1 valid, 0 not valid (including a
/// key OpenSSL refuses), -1 libcrypto is missing.
int swcrypto_rsa_sha256_verify(const uint8_t *modulus, size_t modulus_length,
                               const uint8_t *exponent, size_t exponent_length,
                               const uint8_t *message, size_t message_length,
                               const uint8_t *signature, size_t signature_length);

/// RFC 5929 tls-server-end-point channel-binding data of the first certificate in `pem`: its
/// DER hashed with its signature's hash (SHA-256 when that is MD5 or SHA-1, or when there is
/// none). Writes up to 64 bytes to `digest` and their number to `digest_length`. 0 on
/// success, -1 when it cannot be parsed or libcrypto is missing.
int swcrypto_tls_server_end_point(const char *pem, size_t length, uint8_t digest[64], size_t *digest_length);

#endif
