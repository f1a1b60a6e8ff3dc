#ifndef CSECRETSHIM_H
#define CSECRETSHIM_H

// libsecret (and with it GLib, GObject and GIO) is loaded on first keyring use with
// dlopen("libsecret-1.so.0"), not linked: `--secret-store memory`, and every run that never
// reads or writes a secret, does not map it. GLib's types stay inside the shim: Swift sees
// only opaque pointers. Every function below loads libsecret itself and fails (0, NULL, no
// error) instead of crashing when it cannot be loaded; call sw_secret_load() first to say why.

#include <stddef.h>

/// Loads libsecret-1.so.0 (once, thread-safe). Returns NULL when it is usable, otherwise why
/// not (dlerror's text, or the missing function). The answer never changes afterwards.
const char *sw_secret_load(void);

/// A GError.
typedef struct sw_secret_error sw_secret_error;
/// Whether `error` is libsecret's SECRET_ERROR_IS_LOCKED.
int sw_secret_error_is_locked(const sw_secret_error *error);
/// The error's message (NULL if it has none); valid until sw_secret_error_free.
const char *sw_secret_error_message(const sw_secret_error *error);
void sw_secret_error_free(sw_secret_error *error);

/// A GHashTable of string names to string values (both copied in, freed with the table).
typedef struct sw_secret_attributes sw_secret_attributes;
sw_secret_attributes *sw_secret_attributes_new(void);
/// `value` may be NULL (a schema's attribute types: NULL is SECRET_SCHEMA_ATTRIBUTE_STRING).
void sw_secret_attributes_add(sw_secret_attributes *table, const char *name, const char *value);
void sw_secret_attributes_free(sw_secret_attributes *table);

/// A SecretSchema.
typedef struct sw_secret_schema sw_secret_schema;
/// secret_schema_newv(name, flags, attribute_types); `dont_match_name` non-zero gives
/// SECRET_SCHEMA_DONT_MATCH_NAME, else SECRET_SCHEMA_NONE. The schema is never freed.
sw_secret_schema *sw_secret_schema_new(const char *name, int dont_match_name, sw_secret_attributes *attribute_types);

/// secret_password_storev_sync into the default collection. Returns its gboolean.
int sw_secret_password_store(const sw_secret_schema *schema, sw_secret_attributes *attributes,
                             const char *label, const char *password, sw_secret_error **error);
/// secret_password_lookupv_sync: the password (free with sw_secret_password_free) or NULL.
char *sw_secret_password_lookup(const sw_secret_schema *schema, sw_secret_attributes *attributes,
                                sw_secret_error **error);
void sw_secret_password_free(char *password);
/// secret_password_clearv_sync. Returns its gboolean.
int sw_secret_password_clear(const sw_secret_schema *schema, sw_secret_attributes *attributes,
                             sw_secret_error **error);

/// A SecretService (a GObject).
typedef struct sw_secret_service sw_secret_service;
/// secret_service_get_sync(SECRET_SERVICE_NONE, ...).
sw_secret_service *sw_secret_service_get(sw_secret_error **error);
void sw_secret_service_unref(sw_secret_service *service);
/// secret_service_search_sync(SECRET_SEARCH_ALL): how many of the matching items are locked.
/// The items are released. Returns -1 with `*error` set when the search fails.
long sw_secret_service_count_locked(sw_secret_service *service, const sw_secret_schema *schema,
                                    sw_secret_attributes *attributes, sw_secret_error **error);

/// secret_service_disconnect: drop the shared connection so the next call reconnects
/// (after the keyring daemon restarted).
void sw_secret_service_disconnect(void);

#endif
