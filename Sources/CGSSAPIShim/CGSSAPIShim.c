#include "CGSSAPIShim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>

// Every function the shim calls, typed from the real prototypes.
#define SW_GSS_FUNCTIONS(X)                                                                        \
    X(gss_import_name)                                                                             \
    X(gss_release_name)                                                                            \
    X(gss_acquire_cred_with_password)                                                              \
    X(gss_release_cred)                                                                            \
    X(gss_init_sec_context)                                                                        \
    X(gss_delete_sec_context)                                                                      \
    X(gss_release_buffer)                                                                          \
    X(gss_display_status)                                                                          \
    X(gss_indicate_mechs)                                                                          \
    X(gss_release_oid_set)                                                                         \
    X(gss_krb5_import_cred)
#define SW_KRB5_FUNCTIONS(X)                                                                       \
    X(krb5_init_context)                                                                           \
    X(krb5_free_context)                                                                           \
    X(krb5_parse_name)                                                                             \
    X(krb5_free_principal)                                                                         \
    X(krb5_cc_new_unique)                                                                          \
    X(krb5_cc_initialize)                                                                          \
    X(krb5_cc_store_cred)                                                                          \
    X(krb5_cc_destroy)                                                                             \
    X(krb5_get_init_creds_opt_alloc)                                                               \
    X(krb5_get_init_creds_opt_free)                                                                \
    X(krb5_get_init_creds_password)                                                                \
    X(krb5_free_cred_contents)                                                                     \
    X(krb5_get_error_message)                                                                      \
    X(krb5_free_error_message)

static struct {
#define X(name) __typeof__(name) *name;
    SW_GSS_FUNCTIONS(X)
    SW_KRB5_FUNCTIONS(X)
#undef X
} lib;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int ready;
static char failure[512];

static void load(void) {
    void *gss = dlopen("libgssapi_krb5.so.2", RTLD_NOW | RTLD_LOCAL);
    void *krb5 = gss != NULL ? dlopen("libkrb5.so.3", RTLD_NOW | RTLD_LOCAL) : NULL;
    if (gss == NULL || krb5 == NULL) {
        const char *reason = dlerror();
        snprintf(failure, sizeof failure, "%s", reason != NULL ? reason : "dlopen failed");
        return;
    }
#define X(name)                                                                                    \
    lib.name = (__typeof__(name) *)dlsym(LIBRARY, #name);                                          \
    if (lib.name == NULL) {                                                                        \
        snprintf(failure, sizeof failure, "MIT Kerberos has no %s", #name);                        \
        memset(&lib, 0, sizeof lib);                                                               \
        return;                                                                                    \
    }
#define LIBRARY gss
    SW_GSS_FUNCTIONS(X)
#undef LIBRARY
#define LIBRARY krb5
    SW_KRB5_FUNCTIONS(X)
#undef LIBRARY
#undef X
    ready = 1;
}

const char *sw_gss_load(void) {
    pthread_once(&load_once, load);
    return ready ? NULL : failure;
}

// OIDs spelled out, so no data symbol has to be looked up.
static gss_OID_desc krb5_mech = {9, "\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"};      // 1.2.840.113554.1.2.2
static gss_OID_desc ntlm_mech = {10, "\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a"}; // 1.3.6.1.4.1.311.2.2.10
static gss_OID_desc nt_hostbased = {10, "\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04"};
static gss_OID_desc nt_user_name = {10, "\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x01"};

struct sw_gss_kerberos_cred {
    krb5_context krb5;
    krb5_ccache ccache;
    gss_cred_id_t cred;
    int64_t end_time;
};

struct sw_gss_session {
    sw_gss_mech mech;
    krb5_context krb5;
    krb5_ccache ccache;
    gss_cred_id_t cred;
    int cred_borrowed; // a cached sw_gss_kerberos_cred's: not released with the session
    gss_name_t target;
    gss_ctx_id_t context;
    struct gss_channel_bindings_struct bindings;
    int has_bindings;
};

const char *sw_gss_krb5_code_name(int64_t code) {
    switch ((krb5_error_code)code) {
    case KRB5KRB_AP_ERR_SKEW: return "KRB_AP_ERR_SKEW";
    case KRB5KDC_ERR_PREAUTH_FAILED: return "KDC_ERR_PREAUTH_FAILED";
    case KRB5KRB_AP_ERR_BAD_INTEGRITY: return "KRB_AP_ERR_BAD_INTEGRITY";
    case KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN: return "KDC_ERR_C_PRINCIPAL_UNKNOWN";
    case KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN: return "KDC_ERR_S_PRINCIPAL_UNKNOWN";
    case KRB5_KDC_UNREACH: return "KRB5_KDC_UNREACH";
    case KRB5_REALM_UNKNOWN: return "KRB5_REALM_UNKNOWN";
    case KRB5_REALM_CANT_RESOLVE: return "KRB5_REALM_CANT_RESOLVE";
    case KRB5KDC_ERR_KEY_EXP: return "KDC_ERR_KEY_EXPIRED";
    case KRB5KDC_ERR_CLIENT_REVOKED: return "KDC_ERR_CLIENT_REVOKED";
    case KRB5KRB_AP_ERR_TKT_NYV: return "KRB_AP_ERR_TKT_NYV";
    case KRB5KRB_AP_ERR_TKT_EXPIRED: return "KRB_AP_ERR_TKT_EXPIRED";
    case KRB5KRB_AP_ERR_MODIFIED: return "KRB_AP_ERR_MODIFIED";
    default: return NULL;
    }
}

static int classify_krb5(krb5_error_code code) {
    switch (code) {
    case KRB5KDC_ERR_PREAUTH_FAILED:
    case KRB5KRB_AP_ERR_BAD_INTEGRITY:
        return SW_GSS_E_BAD_PASSWORD;
    case KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN:
        return SW_GSS_E_UNKNOWN_USER;
    case KRB5_KDC_UNREACH:
    case KRB5_REALM_UNKNOWN:
    case KRB5_REALM_CANT_RESOLVE:
        return SW_GSS_E_KDC_UNREACHABLE;
    case KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN:
        return SW_GSS_E_NO_SERVICE_PRINCIPAL;
    case KRB5KRB_AP_ERR_SKEW:
    case KRB5KRB_AP_ERR_TKT_NYV:
        return SW_GSS_E_CLOCK_SKEW;
    case KRB5KDC_ERR_KEY_EXP:
    case KRB5KDC_ERR_CLIENT_REVOKED:
        return SW_GSS_E_ACCOUNT;
    default:
        return SW_GSS_E_OTHER;
    }
}

static void set_krb5_status(sw_gss_status *status, krb5_context context, krb5_error_code code) {
    status->major = 0;
    status->minor = code;
    status->result = classify_krb5(code);
    const char *text = lib.krb5_get_error_message(context, code);
    snprintf(status->message, sizeof status->message, "%s", text != NULL ? text : "Kerberos error");
    if (text != NULL) lib.krb5_free_error_message(context, text);
}

static void append_display(char *into, size_t size, OM_uint32 code, int type, gss_OID mech) {
    OM_uint32 minor = 0, more = 0;
    do {
        gss_buffer_desc text = GSS_C_EMPTY_BUFFER;
        if (GSS_ERROR(lib.gss_display_status(&minor, code, type, mech, &more, &text))) break;
        size_t used = strlen(into);
        snprintf(into + used, size - used, "%s%.*s", used ? "; " : "", (int)text.length, (const char *)text.value);
        lib.gss_release_buffer(&minor, &text);
    } while (more != 0);
}

static void set_gss_status(sw_gss_status *status, OM_uint32 major, OM_uint32 minor, gss_OID mech) {
    status->major = major;
    // The krb5 mechanism's minor codes are krb5_error_codes (negative as int32).
    status->minor = (int32_t)minor;
    status->message[0] = 0;
    append_display(status->message, sizeof status->message, major, GSS_C_GSS_CODE, GSS_C_NO_OID);
    if (minor != 0) append_display(status->message, sizeof status->message, minor, GSS_C_MECH_CODE, mech);
    if (GSS_ROUTINE_ERROR(major) == GSS_S_BAD_BINDINGS) {
        status->result = SW_GSS_E_BAD_BINDINGS;
    } else if (GSS_ROUTINE_ERROR(major) == GSS_S_BAD_MECH) {
        status->result = SW_GSS_E_UNAVAILABLE;
    } else {
        status->result = classify_krb5((krb5_error_code)(int32_t)minor);
    }
}

int sw_gss_ntlm_available(void) {
    if (sw_gss_load() != NULL) return 0;
    OM_uint32 minor = 0;
    gss_OID_set mechs = GSS_C_NO_OID_SET;
    if (GSS_ERROR(lib.gss_indicate_mechs(&minor, &mechs)) || mechs == GSS_C_NO_OID_SET) return 0;
    int found = 0;
    for (size_t i = 0; i < mechs->count; i++) {
        if (mechs->elements[i].length == ntlm_mech.length
            && memcmp(mechs->elements[i].elements, ntlm_mech.elements, ntlm_mech.length) == 0) found = 1;
    }
    lib.gss_release_oid_set(&minor, &mechs);
    return found;
}

/// A ticket-granting ticket for `user` from the password, into a new MEMORY: cache.
static int acquire_kerberos(sw_gss_kerberos_cred *s, const char *user, const char *password, sw_gss_status *status) {
    krb5_error_code code = lib.krb5_init_context(&s->krb5);
    if (code != 0) {
        status->result = SW_GSS_E_UNAVAILABLE;
        status->minor = code;
        snprintf(status->message, sizeof status->message, "krb5_init_context failed (%d)", code);
        s->krb5 = NULL;
        return -1;
    }
    krb5_principal client = NULL;
    krb5_get_init_creds_opt *options = NULL;
    krb5_creds creds;
    memset(&creds, 0, sizeof creds);
    int have_creds = 0;
    if ((code = lib.krb5_parse_name(s->krb5, user, &client)) != 0) goto done;
    if ((code = lib.krb5_cc_new_unique(s->krb5, "MEMORY", NULL, &s->ccache)) != 0) goto done;
    if ((code = lib.krb5_get_init_creds_opt_alloc(s->krb5, &options)) != 0) goto done;
    // No prompter: an expired password is reported, never changed here.
    if ((code = lib.krb5_get_init_creds_password(s->krb5, &creds, client, password, NULL, NULL, 0, NULL, options)) != 0) goto done;
    have_creds = 1;
    s->end_time = creds.times.endtime;
    if ((code = lib.krb5_cc_initialize(s->krb5, s->ccache, client)) != 0) goto done;
    if ((code = lib.krb5_cc_store_cred(s->krb5, s->ccache, &creds)) != 0) goto done;
    OM_uint32 minor = 0;
    OM_uint32 major = lib.gss_krb5_import_cred(&minor, s->ccache, NULL, NULL, &s->cred);
    if (GSS_ERROR(major)) {
        set_gss_status(status, major, minor, &krb5_mech);
        code = -1;
    }
done:
    if (code > 0 || code < -1) set_krb5_status(status, s->krb5, code);
    if (have_creds) lib.krb5_free_cred_contents(s->krb5, &creds);
    if (options != NULL) lib.krb5_get_init_creds_opt_free(s->krb5, options);
    if (client != NULL) lib.krb5_free_principal(s->krb5, client);
    return code == 0 ? 0 : -1;
}

sw_gss_kerberos_cred *sw_gss_kerberos_cred_new(const char *principal, const char *password, sw_gss_status *status) {
    memset(status, 0, sizeof *status);
    const char *why = sw_gss_load();
    if (why != NULL) {
        status->result = SW_GSS_E_UNAVAILABLE;
        snprintf(status->message, sizeof status->message, "%s", why);
        return NULL;
    }
    sw_gss_kerberos_cred *cred = calloc(1, sizeof *cred);
    if (cred == NULL) return NULL;
    cred->cred = GSS_C_NO_CREDENTIAL;
    if (acquire_kerberos(cred, principal, password, status) != 0) {
        sw_gss_kerberos_cred_free(cred);
        return NULL;
    }
    return cred;
}

int64_t sw_gss_kerberos_cred_end_time(const sw_gss_kerberos_cred *cred) {
    return cred->end_time;
}

void sw_gss_kerberos_cred_free(sw_gss_kerberos_cred *cred) {
    if (cred == NULL) return;
    OM_uint32 minor = 0;
    if (cred->cred != GSS_C_NO_CREDENTIAL) lib.gss_release_cred(&minor, &cred->cred);
    if (cred->ccache != NULL) lib.krb5_cc_destroy(cred->krb5, cred->ccache); // the MEMORY: cache and its tickets
    if (cred->krb5 != NULL) lib.krb5_free_context(cred->krb5);
    free(cred);
}

static int acquire_ntlm(sw_gss_session *s, const char *user, const char *password, sw_gss_status *status) {
    OM_uint32 minor = 0;
    gss_name_t name = GSS_C_NO_NAME;
    gss_buffer_desc name_buffer = {strlen(user), (void *)user};
    OM_uint32 major = lib.gss_import_name(&minor, &name_buffer, &nt_user_name, &name);
    if (!GSS_ERROR(major)) {
        gss_buffer_desc secret = {strlen(password), (void *)password};
        gss_OID_set_desc mechs = {1, &ntlm_mech};
        major = lib.gss_acquire_cred_with_password(&minor, name, &secret, GSS_C_INDEFINITE, &mechs,
                                                   GSS_C_INITIATE, &s->cred, NULL, NULL);
        lib.gss_release_name(&minor, &name);
    }
    if (GSS_ERROR(major)) {
        set_gss_status(status, major, minor, &ntlm_mech);
        if (status->result == SW_GSS_E_OTHER && GSS_ROUTINE_ERROR(major) == GSS_S_BAD_MECH) status->result = SW_GSS_E_UNAVAILABLE;
        return -1;
    }
    return 0;
}

static sw_gss_session *session_alloc(sw_gss_mech mech, const uint8_t *binding, size_t binding_length) {
    sw_gss_session *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->mech = mech;
    s->cred = GSS_C_NO_CREDENTIAL;
    s->target = GSS_C_NO_NAME;
    s->context = GSS_C_NO_CONTEXT;
    if (binding != NULL && binding_length > 0) {
        void *copy = malloc(binding_length);
        if (copy == NULL) { free(s); return NULL; }
        memcpy(copy, binding, binding_length);
        s->bindings.application_data.length = binding_length;
        s->bindings.application_data.value = copy;
        s->has_bindings = 1;
    }
    return s;
}

int sw_gss_session_set_bindings(sw_gss_session *s, const uint8_t *binding, size_t binding_length) {
    void *copy = NULL;
    if (binding != NULL && binding_length > 0) {
        copy = malloc(binding_length);
        if (copy == NULL) return -1;
        memcpy(copy, binding, binding_length);
    }
    free(s->bindings.application_data.value);
    s->bindings.application_data.value = copy;
    s->bindings.application_data.length = copy != NULL ? binding_length : 0;
    s->has_bindings = copy != NULL;
    return 0;
}

/// The target name HTTP@host; frees the session on failure.
static sw_gss_session *session_target(sw_gss_session *s, const char *service_host, sw_gss_status *status) {
    char service[1100];
    snprintf(service, sizeof service, "HTTP@%s", service_host);
    gss_buffer_desc buffer = {strlen(service), service};
    OM_uint32 minor = 0;
    OM_uint32 major = lib.gss_import_name(&minor, &buffer, &nt_hostbased, &s->target);
    if (GSS_ERROR(major)) {
        set_gss_status(status, major, minor, GSS_C_NO_OID);
        sw_gss_session_free(s);
        return NULL;
    }
    return s;
}

sw_gss_session *sw_gss_session_new(sw_gss_mech mech, const char *user, const char *password,
                                   const char *service_host, const uint8_t *binding, size_t binding_length,
                                   sw_gss_status *status) {
    memset(status, 0, sizeof *status);
    const char *why = sw_gss_load();
    if (why != NULL) {
        status->result = SW_GSS_E_UNAVAILABLE;
        snprintf(status->message, sizeof status->message, "%s", why);
        return NULL;
    }
    if (mech == SW_GSS_MECH_NTLM && !sw_gss_ntlm_available()) {
        status->result = SW_GSS_E_UNAVAILABLE;
        snprintf(status->message, sizeof status->message,
                 "the GSSAPI NTLMSSP mechanism (gss-ntlmssp) is not installed");
        return NULL;
    }
    sw_gss_session *s = session_alloc(mech, binding, binding_length);
    if (s == NULL) return NULL;
    int failed;
    if (mech == SW_GSS_MECH_KERBEROS) {
        // A ticket of its own, destroyed with the session.
        sw_gss_kerberos_cred own = {NULL, NULL, GSS_C_NO_CREDENTIAL, 0};
        failed = acquire_kerberos(&own, user, password, status);
        s->krb5 = own.krb5;
        s->ccache = own.ccache;
        s->cred = own.cred;
    } else {
        failed = acquire_ntlm(s, user, password, status);
    }
    if (failed) {
        sw_gss_session_free(s);
        return NULL;
    }
    return session_target(s, service_host, status);
}

sw_gss_session *sw_gss_session_new_kerberos(sw_gss_kerberos_cred *cred, const char *service_host, const uint8_t *binding,
                                            size_t binding_length, sw_gss_status *status) {
    memset(status, 0, sizeof *status);
    sw_gss_session *s = session_alloc(SW_GSS_MECH_KERBEROS, binding, binding_length);
    if (s == NULL) return NULL;
    s->cred = cred->cred;
    s->cred_borrowed = 1;
    return session_target(s, service_host, status);
}

int sw_gss_session_step(sw_gss_session *s, const uint8_t *input, size_t input_length,
                        uint8_t **output, size_t *output_length, sw_gss_status *status) {
    memset(status, 0, sizeof *status);
    *output = NULL;
    *output_length = 0;
    gss_OID mech = s->mech == SW_GSS_MECH_KERBEROS ? &krb5_mech : &ntlm_mech;
    gss_buffer_desc in = {input_length, (void *)input};
    gss_buffer_desc out = GSS_C_EMPTY_BUFFER;
    OM_uint32 minor = 0;
    // Mutual authentication for Kerberos: the server's AP-REP (or its KRB-ERROR, which names
    // a clock skew) comes back as the last token and is checked here.
    OM_uint32 flags = s->mech == SW_GSS_MECH_KERBEROS ? GSS_C_MUTUAL_FLAG : 0;
    OM_uint32 major = lib.gss_init_sec_context(
        &minor, s->cred, &s->context, s->target, mech, flags, GSS_C_INDEFINITE,
        s->has_bindings ? &s->bindings : GSS_C_NO_CHANNEL_BINDINGS,
        input_length > 0 ? &in : GSS_C_NO_BUFFER, NULL, &out, NULL, NULL);
    if (out.length > 0) {
        *output = malloc(out.length);
        if (*output != NULL) {
            memcpy(*output, out.value, out.length);
            *output_length = out.length;
        }
    }
    OM_uint32 ignored = 0;
    lib.gss_release_buffer(&ignored, &out);
    if (GSS_ERROR(major)) {
        set_gss_status(status, major, minor, mech);
        free(*output);
        *output = NULL;
        *output_length = 0;
        return status->result;
    }
    status->result = (major & GSS_S_CONTINUE_NEEDED) ? SW_GSS_CONTINUE : SW_GSS_COMPLETE;
    return status->result;
}

void sw_gss_session_free(sw_gss_session *s) {
    if (s == NULL) return;
    OM_uint32 minor = 0;
    if (s->context != GSS_C_NO_CONTEXT) lib.gss_delete_sec_context(&minor, &s->context, GSS_C_NO_BUFFER);
    if (s->target != GSS_C_NO_NAME) lib.gss_release_name(&minor, &s->target);
    if (s->cred != GSS_C_NO_CREDENTIAL && !s->cred_borrowed) lib.gss_release_cred(&minor, &s->cred);
    if (s->ccache != NULL) lib.krb5_cc_destroy(s->krb5, s->ccache);  // the MEMORY: cache and its tickets
    if (s->krb5 != NULL) lib.krb5_free_context(s->krb5);
    free(s->bindings.application_data.value);
    free(s);
}

void sw_gss_free(void *pointer) {
    free(pointer);
}
