#ifndef CGSSAPISHIM_H
#define CGSSAPISHIM_H

// MIT Kerberos' GSSAPI (libgssapi_krb5.so.2) and libkrb5 (libkrb5.so.3) are loaded on first
// use with dlopen, not linked: start-up and every run without Windows-integrated
// authentication do not map them. The real headers (<gssapi/gssapi.h>, <krb5.h>; Debian:
// libkrb5-dev) type the function table in the .c file; Swift calls only the functions below.
//
// One session is one security context: Kerberos (a ticket obtained from the password into a
// private MEMORY: credential cache, destroyed with the session; never the user's default
// cache, never a file) or NTLM through the gss-ntlmssp mechanism (NTLMv2, which puts the MD5
// of the channel bindings into MsvAvChannelBindings). A session is used from one thread.

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SW_GSS_MECH_KERBEROS = 1,
    SW_GSS_MECH_NTLM = 2,
} sw_gss_mech;

/// What a call came to, classified from the krb5 / GSSAPI codes with the constants of the
/// real headers.
typedef enum {
    SW_GSS_COMPLETE = 0,
    SW_GSS_CONTINUE = 1,
    SW_GSS_E_UNAVAILABLE = -1,          // library or mechanism missing (gss-ntlmssp not installed)
    SW_GSS_E_BAD_PASSWORD = -2,         // KDC_ERR_PREAUTH_FAILED, KRB_AP_ERR_BAD_INTEGRITY
    SW_GSS_E_UNKNOWN_USER = -3,         // KDC_ERR_C_PRINCIPAL_UNKNOWN
    SW_GSS_E_KDC_UNREACHABLE = -4,      // no KDC for the realm, or none answered
    SW_GSS_E_NO_SERVICE_PRINCIPAL = -5, // KDC_ERR_S_PRINCIPAL_UNKNOWN: no SPN HTTP/<host>
    SW_GSS_E_CLOCK_SKEW = -6,           // KRB_AP_ERR_SKEW
    SW_GSS_E_BAD_BINDINGS = -7,         // GSS_S_BAD_BINDINGS
    SW_GSS_E_ACCOUNT = -8,              // password expired, account locked or disabled
    SW_GSS_E_OTHER = -9,
} sw_gss_result;

typedef struct {
    int result;            // an sw_gss_result
    uint32_t major;        // GSS major status (0 for a libkrb5 failure)
    int64_t minor;         // GSS minor status or krb5_error_code
    char message[512];     // gss_display_status / krb5_get_error_message text
} sw_gss_status;

typedef struct sw_gss_session sw_gss_session;

/// NULL when GSSAPI is usable, otherwise why not. The answer never changes afterwards.
const char *sw_gss_load(void);

/// 1 when the GSSAPI library offers the NTLMSSP mechanism (gss-ntlmssp), else 0.
int sw_gss_ntlm_available(void);

/// Acquires credentials and prepares a context for HTTP@`service_host`.
/// Kerberos: `user` is a principal ("alice@CONTOSO.COM"). NTLM: "DOMAIN\user" or "user@domain".
/// `binding` (may be NULL) is the channel bindings' application data, e.g.
/// "tls-server-end-point:" + hash. NULL on failure, with `status` saying why.
sw_gss_session *sw_gss_session_new(sw_gss_mech mech, const char *user, const char *password,
                                   const char *service_host, const uint8_t *binding, size_t binding_length,
                                   sw_gss_status *status);

/// A Kerberos ticket-granting ticket obtained from a password into its own MEMORY: cache,
/// kept by the caller for many sessions (the service tickets gss_init_sec_context gets land in
/// the same in-memory cache). Freed with sw_gss_kerberos_cred_free, which destroys the cache.
typedef struct sw_gss_kerberos_cred sw_gss_kerberos_cred;

/// `principal` like "alice@CONTOSO.COM". NULL on failure, with `status` saying why.
sw_gss_kerberos_cred *sw_gss_kerberos_cred_new(const char *principal, const char *password, sw_gss_status *status);

/// When the ticket-granting ticket expires (seconds since the epoch).
int64_t sw_gss_kerberos_cred_end_time(const sw_gss_kerberos_cred *cred);

void sw_gss_kerberos_cred_free(sw_gss_kerberos_cred *cred);

/// A Kerberos session on `cred`, which it borrows: `cred` must outlive the session.
sw_gss_session *sw_gss_session_new_kerberos(sw_gss_kerberos_cred *cred, const char *service_host, const uint8_t *binding,
                                            size_t binding_length, sw_gss_status *status);

/// Replaces the channel bindings the next steps use: an NTLM context whose NEGOTIATE went out
/// before the connection's certificate was known binds its AUTHENTICATE to it (gss-ntlmssp
/// reads the bindings in that step). 0, or -1 when out of memory.
int sw_gss_session_set_bindings(sw_gss_session *session, const uint8_t *binding, size_t binding_length);

/// One gss_init_sec_context step: `input` is the server's token (NULL/0 on the first step).
/// Returns SW_GSS_COMPLETE or SW_GSS_CONTINUE (with a token in *output, possibly empty) or an
/// error (status filled). Free *output with sw_gss_free.
int sw_gss_session_step(sw_gss_session *session, const uint8_t *input, size_t input_length,
                        uint8_t **output, size_t *output_length, sw_gss_status *status);

/// Deletes the context, the credentials and the MEMORY: cache.
void sw_gss_session_free(sw_gss_session *session);

void sw_gss_free(void *pointer);

/// The krb5 code a minor status stands for, with its name ("KRB_AP_ERR_SKEW"), for tests and
/// messages; NULL for codes without a name here.
const char *sw_gss_krb5_code_name(int64_t code);

#endif
