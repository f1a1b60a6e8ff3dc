#include "CSecretShim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// libsecret's own header (libsecret-1-dev), so the compiler checks every declaration and
// constant the shim uses; the library itself is still dlopen'ed, never linked (Package.swift
// passes only the include paths, not pkg-config's link flags).
#include <libsecret/secret.h>

// dlsym on libsecret's handle also finds the g_* functions: GLib, GObject and GIO are its
// dependencies and are searched with it.
#define SW_SECRET_FUNCTIONS(X)                                                                     \
    X(g_str_hash)                                                                                  \
    X(g_str_equal)                                                                                 \
    X(g_hash_table_new_full)                                                                       \
    X(g_hash_table_insert)                                                                         \
    X(g_hash_table_unref)                                                                          \
    X(g_strdup)                                                                                    \
    X(g_free)                                                                                      \
    X(g_object_unref)                                                                              \
    X(g_list_free)                                                                                 \
    X(g_error_free)                                                                                \
    X(secret_schema_newv)                                                                          \
    X(secret_password_storev_sync)                                                                 \
    X(secret_password_lookupv_sync)                                                                \
    X(secret_password_free)                                                                        \
    X(secret_password_clearv_sync)                                                                 \
    X(secret_service_get_sync)                                                                     \
    X(secret_service_search_sync)                                                                  \
    X(secret_item_get_locked)                                                                      \
    X(secret_error_get_quark)                                                                      \
    X(secret_service_disconnect)

static struct {
#define X(name) __typeof__(name) *name;
    SW_SECRET_FUNCTIONS(X)
#undef X
} lib;

static pthread_once_t secret_once = PTHREAD_ONCE_INIT;
static int secret_ready;           // written once inside pthread_once, read after it
static char secret_failure[512];   // why libsecret is not usable, when secret_ready is 0

static void secret_load_once(void) {
    void *library = dlopen("libsecret-1.so.0", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(secret_failure, sizeof secret_failure, "%s", reason != NULL ? reason : "dlopen failed");
        return;
    }
#define X(name)                                                                                    \
    lib.name = (__typeof__(name) *)dlsym(library, #name);                                                  \
    if (lib.name == NULL) {                                                                        \
        snprintf(secret_failure, sizeof secret_failure, "libsecret-1.so.0 has no %s", #name);     \
        dlclose(library);                                                                          \
        memset(&lib, 0, sizeof lib);                                                               \
        return;                                                                                    \
    }
    SW_SECRET_FUNCTIONS(X)
#undef X
    secret_ready = 1;
}

static int secret_loaded(void) {
    pthread_once(&secret_once, secret_load_once);
    return secret_ready;
}

const char *sw_secret_load(void) {
    return secret_loaded() ? NULL : secret_failure;
}

// MARK: Errors

int sw_secret_error_is_locked(const sw_secret_error *error) {
    const GError *e = (const GError *)error;
    return e != NULL && secret_loaded() && e->domain == lib.secret_error_get_quark()
        && e->code == SECRET_ERROR_IS_LOCKED;
}

const char *sw_secret_error_message(const sw_secret_error *error) {
    return error != NULL ? ((const GError *)error)->message : NULL;
}

void sw_secret_error_free(sw_secret_error *error) {
    if (error != NULL && secret_loaded()) lib.g_error_free((GError *)error);
}

// MARK: Attribute tables

sw_secret_attributes *sw_secret_attributes_new(void) {
    if (!secret_loaded()) return NULL;
    return (sw_secret_attributes *)lib.g_hash_table_new_full(lib.g_str_hash, lib.g_str_equal, lib.g_free, lib.g_free);
}

void sw_secret_attributes_add(sw_secret_attributes *table, const char *name, const char *value) {
    if (table == NULL || !secret_loaded()) return;
    // g_strdup(NULL) is NULL, and g_free(NULL) does nothing.
    lib.g_hash_table_insert((GHashTable *)table, lib.g_strdup(name), lib.g_strdup(value));
}

void sw_secret_attributes_free(sw_secret_attributes *table) {
    if (table != NULL && secret_loaded()) lib.g_hash_table_unref((GHashTable *)table);
}

// MARK: Schemas and passwords

sw_secret_schema *sw_secret_schema_new(const char *name, int dont_match_name, sw_secret_attributes *attribute_types) {
    if (attribute_types == NULL || !secret_loaded()) return NULL;
    int flags = dont_match_name ? SECRET_SCHEMA_DONT_MATCH_NAME : SECRET_SCHEMA_NONE;
    return (sw_secret_schema *)lib.secret_schema_newv(name, flags, (GHashTable *)attribute_types);
}

int sw_secret_password_store(const sw_secret_schema *schema, sw_secret_attributes *attributes,
                             const char *label, const char *password, sw_secret_error **error) {
    if (!secret_loaded()) return 0;
    return lib.secret_password_storev_sync((const SecretSchema *)schema, (GHashTable *)attributes, NULL, label,
                                           password, NULL, (GError **)error);
}

char *sw_secret_password_lookup(const sw_secret_schema *schema, sw_secret_attributes *attributes,
                                sw_secret_error **error) {
    if (!secret_loaded()) return NULL;
    return lib.secret_password_lookupv_sync((const SecretSchema *)schema, (GHashTable *)attributes, NULL,
                                            (GError **)error);
}

void sw_secret_password_free(char *password) {
    if (password != NULL && secret_loaded()) lib.secret_password_free(password);
}

int sw_secret_password_clear(const sw_secret_schema *schema, sw_secret_attributes *attributes,
                             sw_secret_error **error) {
    if (!secret_loaded()) return 0;
    return lib.secret_password_clearv_sync((const SecretSchema *)schema, (GHashTable *)attributes, NULL,
                                           (GError **)error);
}

// MARK: The service

sw_secret_service *sw_secret_service_get(sw_secret_error **error) {
    if (!secret_loaded()) return NULL;
    return (sw_secret_service *)lib.secret_service_get_sync(SECRET_SERVICE_NONE, NULL, (GError **)error);
}

void sw_secret_service_unref(sw_secret_service *service) {
    if (service != NULL && secret_loaded()) lib.g_object_unref(service);
}

long sw_secret_service_count_locked(sw_secret_service *service, const sw_secret_schema *schema,
                                    sw_secret_attributes *attributes, sw_secret_error **error) {
    if (!secret_loaded()) return -1;
    GError *failure = NULL;
    GList *items = lib.secret_service_search_sync((SecretService *)service, (const SecretSchema *)schema,
                                                  (GHashTable *)attributes, SECRET_SEARCH_ALL, NULL, &failure);
    long locked = 0;
    for (GList *node = items; node != NULL; node = node->next) {
        if (node->data != NULL) {
            if (lib.secret_item_get_locked((SecretItem *)node->data)) locked += 1;
            lib.g_object_unref(node->data);
        }
    }
    lib.g_list_free(items);
    if (failure != NULL) {
        if (error != NULL) *error = (sw_secret_error *)failure;
        else lib.g_error_free(failure);
        return -1;
    }
    return locked;
}

void sw_secret_service_disconnect(void) {
    if (sw_secret_load() == NULL) lib.secret_service_disconnect();
}
