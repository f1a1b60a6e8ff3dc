#include "CSecretShim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// The GLib and libsecret declarations the shim needs, written out here because their headers
// are not on the default include path (and pkg-config's flags would bring the libraries' link
// flags with them). Layouts and values are those of GLib 2.x and libsecret 0.20, all stable ABI.

typedef int gboolean;
typedef unsigned int guint;
typedef unsigned int GQuark;
typedef void *gpointer;
typedef const void *gconstpointer;

typedef struct {
    GQuark domain;
    int code;
    char *message;
} GError;

typedef struct GList {
    gpointer data;
    struct GList *next;
    struct GList *prev;
} GList;

typedef struct GHashTable GHashTable;
typedef struct GCancellable GCancellable;
typedef struct SecretSchema SecretSchema;  // only ever built by secret_schema_newv
typedef struct SecretService SecretService;
typedef struct SecretItem SecretItem;

typedef guint (*GHashFunc)(gconstpointer key);
typedef gboolean (*GEqualFunc)(gconstpointer a, gconstpointer b);
typedef void (*GDestroyNotify)(gpointer data);

enum {
    SECRET_SCHEMA_NONE = 0,
    SECRET_SCHEMA_DONT_MATCH_NAME = 1 << 1,
    SECRET_SERVICE_NONE = 0,
    SECRET_SEARCH_ALL = 1 << 1,
    SECRET_ERROR_IS_LOCKED = 2,
};

typedef guint g_str_hash_f(gconstpointer);
typedef gboolean g_str_equal_f(gconstpointer, gconstpointer);
typedef GHashTable *g_hash_table_new_full_f(GHashFunc, GEqualFunc, GDestroyNotify, GDestroyNotify);
typedef gboolean g_hash_table_insert_f(GHashTable *, gpointer, gpointer);
typedef void g_hash_table_unref_f(GHashTable *);
typedef char *g_strdup_f(const char *);
typedef void g_free_f(gpointer);
typedef void g_object_unref_f(gpointer);
typedef void g_list_free_f(GList *);
typedef void g_error_free_f(GError *);
typedef SecretSchema *secret_schema_newv_f(const char *, int, GHashTable *);
typedef gboolean secret_password_storev_sync_f(const SecretSchema *, GHashTable *, const char *, const char *,
                                               const char *, GCancellable *, GError **);
typedef char *secret_password_lookupv_sync_f(const SecretSchema *, GHashTable *, GCancellable *, GError **);
typedef void secret_password_free_f(char *);
typedef gboolean secret_password_clearv_sync_f(const SecretSchema *, GHashTable *, GCancellable *, GError **);
typedef SecretService *secret_service_get_sync_f(int, GCancellable *, GError **);
typedef GList *secret_service_search_sync_f(SecretService *, const SecretSchema *, GHashTable *, int,
                                            GCancellable *, GError **);
typedef gboolean secret_item_get_locked_f(SecretItem *);
typedef GQuark secret_error_get_quark_f(void);
typedef void secret_service_disconnect_f(void);

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
#define X(name) name##_f *name;
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
    lib.name = (name##_f *)dlsym(library, #name);                                                  \
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
