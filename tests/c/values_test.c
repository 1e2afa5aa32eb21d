/*
 * values_test.c - the per-key and compare-and-set API of libsession (issue 7):
 * session_get_value, session_set_value, session_delete_value, session_pop_value,
 * session_get_versioned and session_update_if, and their session_store_* twins,
 * through include/session.h.
 *
 * Usage: values_test CONFIG_JSON [KEYS_PER_THREAD [INCREMENTS_PER_THREAD]]
 *   CONFIG_JSON            config.json text whose default store is the store
 *                          under test (a single "sessions" object, or a map with a
 *                          "default" entry):
 *                            {"sessions": {"driver": "memory"}}
 *                            {"sessions": {"driver": "storage", "storage_name": "s"},
 *                             "storages": {"s": {"type": "filesystem", "root": "/tmp/x"}}}
 *                            {"sessions": {"driver": "redis", "url": "redis://127.0.0.1:6379"}}
 *                          The test adds max_data_size, regenerate_grace and
 *                          idle_timeout to one handle's copy itself, so CONFIG_JSON
 *                          must not set them. Every "root" it names is created
 *                          first (a file store's root must exist before init).
 *   KEYS_PER_THREAD        keys each thread sets in the per-key concurrency parts
 *                          (default 500: 8 threads leave 4,000 keys); smaller
 *                          under valgrind.
 *   INCREMENTS_PER_THREAD  compare-and-set increments per thread (default 1000:
 *                          8 threads count to 8,000).
 *
 * What it proves:
 *   1. Semantics, on the global API and on a handle: get/set/delete/pop of members
 *      of a JSON object, untouched members keeping their bytes and order, a missing
 *      member (NULL with SESSION_ERROR_OK; delete succeeds), invalid json_value, a
 *      session whose data is not an object and NULL arguments (INVALID_ARGUMENT,
 *      data untouched), a missing session (NOT_FOUND), pop in one step (8 threads
 *      race for one flash message: exactly one gets it), max_data_size, and the
 *      read-only old id of a regenerated session within its grace.
 *   2. Per-key concurrency: 8 threads each set KEYS_PER_THREAD distinct keys of one
 *      session; every key is there, once, with its value. Then (file and Redis
 *      drivers only: memory sessions belong to one process) 2 processes x 4 threads
 *      do the same. The library is configured before fork(), as the README says a
 *      pre-fork server must; the children then use it.
 *   3. Compare-and-set: 8 threads increment a counter with get_versioned /
 *      update_if retry loops, INCREMENTS_PER_THREAD times each, and the counter ends
 *      at exactly 8 x INCREMENTS_PER_THREAD; a stale version gives 0 +
 *      SESSION_ERROR_CONFLICT and writes nothing; versions grow with every write
 *      (update, update_if, set_value, delete_value and pop_value of a present
 *      member, regenerate) and not with reads or touch.
 *
 * Checks do not stop at the first failure: each failed one is printed, and the
 * program ends with "values_test: N passed, M failed" and exit status 1 when M is
 * not 0.
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "session.h"

#define TEST_NAME "values_test"
#include "test_support.h"

#define THREADS 8
#define PROCESSES 2
#define PROCESS_THREADS 4
#define POP_ROUNDS 25

static int keys_per_thread = 500;
static int increments_per_thread = 1000;

/* fail_at and the CHECK* macros: main thread only; worker threads report through their
   structs. */

static void sleep_s(double seconds)
{
    sleep_until(now_s() + seconds);
}

/* ---- a small reader of the top-level members of a JSON object ------------------ */

/* p at '"': returns just after the closing quote, NULL if unterminated. */
static const char *skip_string(const char *p)
{
    for (p++; *p; p++) {
        if (*p == '\\') {
            if (p[1] == '\0')
                return NULL;
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* p at a value: returns just after it, NULL if it is cut short. Validates only the
   nesting, which is all the checks need (the library validates JSON itself). */
static const char *skip_value(const char *p)
{
    if (*p == '"')
        return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                p = skip_string(p);
                if (p == NULL)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *start = p;
    while (*p && strchr(",}] \t\r\n", *p) == NULL)
        p++;
    return p == start ? NULL : p;
}

typedef void (*member_fn)(const char *key, size_t key_len, const char *value, size_t value_len,
                          void *ctx);

/* Calls `fn` (if not NULL) for each top-level member of the object `doc`, with the
   key's raw bytes between its quotes and the value's text. Returns the number of
   members, -1 when `doc` is not an object. */
static long for_each_member(const char *doc, member_fn fn, void *ctx)
{
    if (doc == NULL)
        return -1;
    const char *p = skip_ws(doc);
    if (*p != '{')
        return -1;
    p = skip_ws(p + 1);
    if (*p == '}')
        return *skip_ws(p + 1) == '\0' ? 0 : -1;
    long n = 0;
    for (;;) {
        if (*p != '"')
            return -1;
        const char *key_end = skip_string(p);
        if (key_end == NULL)
            return -1;
        const char *value = after_colon(key_end);
        if (value == NULL)
            return -1;
        const char *value_end = skip_value(value);
        if (value_end == NULL)
            return -1;
        if (fn != NULL)
            fn(p + 1, (size_t)(key_end - p - 2), value, (size_t)(value_end - value), ctx);
        n++;
        p = skip_ws(value_end);
        if (*p == ',') {
            p = skip_ws(p + 1);
            continue;
        }
        if (*p == '}')
            return *skip_ws(p + 1) == '\0' ? n : -1;
        return -1;
    }
}

/* ---- the API under test: the global functions, or a handle ---------------------- */

static char *t_get_value(const target_t *t, const char *id, const char *key)
{
    return t->global ? session_get_value(id, key) : session_store_get_value(t->h, id, key);
}

static int t_set_value(const target_t *t, const char *id, const char *key, const char *value)
{
    return t->global ? session_set_value(id, key, value)
                     : session_store_set_value(t->h, id, key, value);
}

static int t_delete_value(const target_t *t, const char *id, const char *key)
{
    return t->global ? session_delete_value(id, key) : session_store_delete_value(t->h, id, key);
}

static char *t_pop_value(const target_t *t, const char *id, const char *key)
{
    return t->global ? session_pop_value(id, key) : session_store_pop_value(t->h, id, key);
}

static char *t_get_versioned(const target_t *t, const char *id, unsigned long long *version)
{
    return t->global ? session_get_versioned(id, version)
                     : session_store_get_versioned(t->h, id, version);
}

static int t_update_if(const target_t *t, const char *id, const char *data,
                       unsigned long long version)
{
    return t->global ? session_update_if(id, data, version)
                     : session_store_update_if(t->h, id, data, version);
}

/* The session's version, 0 when get_versioned failed (versions of live sessions
   are compared with each other, never with 0). */
static unsigned long long t_version(const target_t *t, const char *id)
{
    unsigned long long v = 0;
    char *data = t_get_versioned(t, id, &v);
    if (data == NULL)
        return 0;
    free(data);
    return v;
}

/* get(id) returns exactly `want`. */
#define CHECK_DATA(t, id, want, what)                                                              \
    do {                                                                                           \
        char *data_ = t_get((t), (id));                                                            \
        CHECK_STR(data_, (want), what);                                                            \
        free(data_);                                                                               \
    } while (0)

/* get_value(id, key) returns exactly `want` (NULL: no such member, code OK). */
#define CHECK_VALUE(t, id, key, want, what)                                                        \
    do {                                                                                           \
        char *value_ = t_get_value((t), (id), (key));                                              \
        CHECK_STR(value_, (want), what);                                                           \
        if (value_ == NULL && (want) == NULL)                                                      \
            CHECK_OK(what);                                                                        \
        free(value_);                                                                              \
    } while (0)

/* ---- 1. semantics --------------------------------------------------------------- */

static void test_get_set_delete_pop(const target_t *t)
{
    suite = "get/set/delete/pop";
    char *id = t_create(t, "{\"user\":42,\"name\":\"alice\",\"cart\":[1,2]}");
    CHECK(is_session_id(id), "create a JSON object session");
    if (id == NULL)
        return;

    CHECK_VALUE(t, id, "user", "42", "get_value of a number");
    CHECK_OK("get_value of a present member");
    CHECK_VALUE(t, id, "name", "\"alice\"", "get_value of a string");
    CHECK_VALUE(t, id, "cart", "[1,2]", "get_value of an array");
    CHECK_VALUE(t, id, "nosuchkey", NULL, "get_value of a missing member");
    CHECK_VALUE(t, id, "User", NULL, "get_value is case-sensitive");
    CHECK_DATA(t, id, "{\"user\":42,\"name\":\"alice\",\"cart\":[1,2]}", "get_value writes nothing");

    /* Replace a member in place: the others keep their bytes and their order. */
    CHECK(t_set_value(t, id, "name", "\"bob\""), "set_value of a present member");
    CHECK_OK("set_value of a present member");
    CHECK_DATA(t, id, "{\"user\":42,\"name\":\"bob\",\"cart\":[1,2]}",
               "set_value replaces the member in place");
    /* Add a member: after the last one. */
    CHECK(t_set_value(t, id, "flash", "\"saved\""), "set_value of a new member");
    CHECK_OK("set_value of a new member");
    CHECK_DATA(t, id, "{\"user\":42,\"name\":\"bob\",\"cart\":[1,2],\"flash\":\"saved\"}",
               "set_value appends a new member after the last one");
    CHECK(t_set_value(t, id, "cart", "{\"items\":[3,4],\"total\":null}"),
          "set_value of an object value");
    CHECK_VALUE(t, id, "cart", "{\"items\":[3,4],\"total\":null}", "get_value of an object value");
    CHECK_DATA(t, id,
               "{\"user\":42,\"name\":\"bob\",\"cart\":{\"items\":[3,4],\"total\":null},"
               "\"flash\":\"saved\"}",
               "set_value of a middle member keeps the others");
    const char *values[] = {"true", "false", "null", "-1.5e3", "\"\"", "[]", "{}", "\"caf\\u00e9\""};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        CHECK(t_set_value(t, id, "v", values[i]), "set_value of each kind of JSON value");
        CHECK_VALUE(t, id, "v", values[i], "get_value returns the value set");
    }
    CHECK_DATA(t, id,
               "{\"user\":42,\"name\":\"bob\",\"cart\":{\"items\":[3,4],\"total\":null},"
               "\"flash\":\"saved\",\"v\":\"caf\\u00e9\"}",
               "repeated set_value of one member");

    /* Delete: first, middle, last member. */
    CHECK(t_delete_value(t, id, "user"), "delete_value of the first member");
    CHECK_OK("delete_value of a present member");
    CHECK_DATA(t, id,
               "{\"name\":\"bob\",\"cart\":{\"items\":[3,4],\"total\":null},\"flash\":\"saved\","
               "\"v\":\"caf\\u00e9\"}",
               "delete_value of the first member keeps the others");
    CHECK(t_delete_value(t, id, "cart"), "delete_value of a middle member");
    CHECK_DATA(t, id, "{\"name\":\"bob\",\"flash\":\"saved\",\"v\":\"caf\\u00e9\"}",
               "delete_value of a middle member keeps the others");
    CHECK(t_delete_value(t, id, "v"), "delete_value of the last member");
    CHECK_DATA(t, id, "{\"name\":\"bob\",\"flash\":\"saved\"}",
               "delete_value of the last member keeps the others");
    CHECK_VALUE(t, id, "v", NULL, "get_value of a deleted member");

    /* A missing member: delete succeeds and writes nothing; pop and get give NULL. */
    CHECK(t_delete_value(t, id, "nosuchkey"), "delete_value of a missing member returns non-zero");
    CHECK_OK("delete_value of a missing member");
    CHECK_DATA(t, id, "{\"name\":\"bob\",\"flash\":\"saved\"}",
               "delete_value of a missing member leaves the data");
    char *popped = t_pop_value(t, id, "nosuchkey");
    CHECK_STR(popped, NULL, "pop_value of a missing member");
    CHECK_OK("pop_value of a missing member");
    free(popped);
    CHECK_DATA(t, id, "{\"name\":\"bob\",\"flash\":\"saved\"}",
               "pop_value of a missing member leaves the data");

    /* Pop: the value once, then it is gone. */
    popped = t_pop_value(t, id, "flash");
    CHECK_STR(popped, "\"saved\"", "pop_value returns the value");
    CHECK_OK("pop_value of a present member");
    free(popped);
    CHECK_DATA(t, id, "{\"name\":\"bob\"}", "pop_value removed the member");
    popped = t_pop_value(t, id, "flash");
    CHECK_STR(popped, NULL, "a second pop_value of a flash message finds nothing");
    CHECK_OK("a second pop_value of a flash message");
    free(popped);
    CHECK_VALUE(t, id, "flash", NULL, "get_value of a popped member");

    /* Down to {} and back. */
    popped = t_pop_value(t, id, "name");
    CHECK_STR(popped, "\"bob\"", "pop_value of the only member");
    free(popped);
    CHECK_DATA(t, id, "{}", "pop_value of the only member leaves {}");
    CHECK(t_set_value(t, id, "k", "{\"nested\":[1,{\"a\":null}]}"), "set_value on {}");
    CHECK_DATA(t, id, "{\"k\":{\"nested\":[1,{\"a\":null}]}}", "set_value on {}");
    CHECK(t_delete_value(t, id, "k"), "delete_value of the only member");
    CHECK_DATA(t, id, "{}", "delete_value of the only member leaves {}");
    CHECK(t_destroy(t, id), "destroy");
    free(id);

    /* White space and formatting of untouched members survive. */
    suite = "untouched members keep their bytes";
    const char *spaced = "{ \"a\" : 1 ,\n  \"b\":\"x\",\t\"c\" : [ 1, 2 ] }";
    id = t_create(t, spaced);
    CHECK(is_session_id(id), "create a session with white space");
    if (id == NULL)
        return;
    char *v = t_get_value(t, id, "c");
    CHECK(same(v, "[ 1, 2 ]") || same(v, "[1,2]"), "get_value of a spaced array");
    free(v);
    CHECK(t_set_value(t, id, "b", "\"y\""), "set_value in a spaced object");
    char *data = t_get(t, id);
    const char *a_at = data ? strstr(data, "\"a\" : 1 ,") : NULL;
    const char *b_at = data ? strstr(data, "\"b\":\"y\"") : NULL;
    const char *c_at = data ? strstr(data, "\"c\" : [ 1, 2 ]") : NULL;
    CHECK(a_at && b_at && c_at && a_at < b_at && b_at < c_at,
          "set_value keeps the other members' bytes and the order a, b, c");
    CHECK(for_each_member(data, NULL, NULL) == 3, "the result is an object of 3 members");
    free(data);
    CHECK(t_delete_value(t, id, "b"), "delete_value in a spaced object");
    data = t_get(t, id);
    a_at = data ? strstr(data, "\"a\" : 1") : NULL;
    c_at = data ? strstr(data, "\"c\" : [ 1, 2 ]") : NULL;
    CHECK(a_at && c_at && a_at < c_at && strstr(data, "\"b\"") == NULL,
          "delete_value keeps the other members' bytes and order");
    CHECK(for_each_member(data, NULL, NULL) == 2, "the result is an object of 2 members");
    free(data);
    CHECK(t_destroy(t, id), "destroy");
    free(id);

    /* Keys are member names: escapes in the data are decoded, and keys with quotes
       or backslashes are written escaped. */
    suite = "keys";
    id = t_create(t, "{\"caf\\u00e9\":1,\"a\\\"b\":2}");
    CHECK(is_session_id(id), "create a session with escaped member names");
    if (id == NULL)
        return;
    CHECK_VALUE(t, id, "caf\xc3\xa9", "1", "get_value of a member whose name has a \\u escape");
    CHECK_VALUE(t, id, "a\"b", "2", "get_value of a member whose name has a quote");
    CHECK(t_set_value(t, id, "q\"\\/k", "3"), "set_value of a key with a quote and a backslash");
    CHECK_VALUE(t, id, "q\"\\/k", "3", "get_value of a key with a quote and a backslash");
    CHECK(t_set_value(t, id, "", "4"), "set_value of the empty key");
    CHECK_VALUE(t, id, "", "4", "get_value of the empty key");
    data = t_get(t, id);
    CHECK(for_each_member(data, NULL, NULL) == 4, "the result is an object of 4 members");
    const char *prefix = "{\"caf\\u00e9\":1,\"a\\\"b\":2,";
    CHECK(data && strncmp(data, prefix, strlen(prefix)) == 0,
          "the escaped members keep their bytes");
    free(data);
    CHECK(t_delete_value(t, id, "a\"b"), "delete_value of a key with a quote");
    CHECK_VALUE(t, id, "a\"b", NULL, "the member with a quote is gone");
    CHECK_VALUE(t, id, "caf\xc3\xa9", "1", "the other members stay");
    CHECK(t_destroy(t, id), "destroy");
    free(id);
}

static void test_invalid(const target_t *t)
{
    suite = "invalid arguments";
    const char *orig = "{\"a\":1,\"b\":[true]}";
    char *id = t_create(t, orig);
    CHECK(is_session_id(id), "create");
    if (id == NULL)
        return;
    unsigned long long v0 = t_version(t, id);

    const char *bad_values[] = {"", "   ", "{", "nope", "1 2", "[1,]", "'x'", "{\"x\":1",
                                "\"unterminated", "{\"a\":1}}", "NaN"};
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "set_value with json_value \"%s\"", bad_values[i]);
        CHECK(t_set_value(t, id, "a", bad_values[i]) == 0, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
        CHECK(t_set_value(t, id, "new", bad_values[i]) == 0, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
    }
    CHECK_DATA(t, id, orig, "invalid json_values left the data untouched");

    /* NULL key, NULL json_value. */
    CHECK(t_set_value(t, id, "a", NULL) == 0, "set_value(id, key, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "set_value(id, key, NULL)");
    CHECK(t_set_value(t, id, NULL, "1") == 0, "set_value(id, NULL, value)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "set_value(id, NULL, value)");
    char *r = t_get_value(t, id, NULL);
    CHECK(r == NULL, "get_value(id, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "get_value(id, NULL)");
    free(r);
    CHECK(t_delete_value(t, id, NULL) == 0, "delete_value(id, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "delete_value(id, NULL)");
    r = t_pop_value(t, id, NULL);
    CHECK(r == NULL, "pop_value(id, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "pop_value(id, NULL)");
    free(r);
    r = t_get_versioned(t, id, NULL);
    CHECK(r == NULL, "get_versioned(id, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "get_versioned(id, NULL)");
    free(r);
    CHECK(t_update_if(t, id, NULL, v0) == 0, "update_if(id, NULL, version)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "update_if(id, NULL, version)");
    CHECK_DATA(t, id, orig, "NULL arguments left the data untouched");
    CHECK(t_version(t, id) == v0, "failed calls did not change the version");
    CHECK(t_destroy(t, id), "destroy");
    free(id);

    /* Sessions whose data is not a JSON object: every per-key call refuses them. */
    suite = "data that is not a JSON object";
    const char *not_objects[] = {"[1,2]",        "42",       "\"text\"", "hello", "",
                                 "{\"a\":1",     "{\"a\":1} x", "{a:1}",  "{\"a\":1,}",
                                 "[{\"a\":1}]", "null"};
    for (size_t i = 0; i < sizeof not_objects / sizeof not_objects[0]; i++) {
        const char *data = not_objects[i];
        char what[128];
        id = t_create(t, data);
        snprintf(what, sizeof what, "create a session holding \"%s\"", data);
        CHECK(is_session_id(id), what);
        if (id == NULL)
            continue;
        unsigned long long v = t_version(t, id);
        snprintf(what, sizeof what, "get_value on data \"%s\"", data);
        r = t_get_value(t, id, "a");
        CHECK(r == NULL, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
        free(r);
        snprintf(what, sizeof what, "set_value on data \"%s\"", data);
        CHECK(t_set_value(t, id, "a", "2") == 0, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
        snprintf(what, sizeof what, "delete_value on data \"%s\"", data);
        CHECK(t_delete_value(t, id, "a") == 0, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
        snprintf(what, sizeof what, "pop_value on data \"%s\"", data);
        r = t_pop_value(t, id, "a");
        CHECK(r == NULL, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
        free(r);
        snprintf(what, sizeof what, "data \"%s\" untouched by the refused calls", data);
        CHECK_DATA(t, id, data, what);
        CHECK(t_version(t, id) == v, what);
        CHECK(t_destroy(t, id), "destroy");
        free(id);
    }

    /* Missing sessions: never created, destroyed. */
    suite = "missing session";
    char *missing = session_create_id();
    char *gone = t_create(t, "{\"a\":1}");
    CHECK(is_session_id(missing) && is_session_id(gone), "ids");
    CHECK(gone == NULL || t_destroy(t, gone), "destroy");
    const char *ids[] = {missing, gone};
    for (int i = 0; i < 2; i++) {
        if (ids[i] == NULL)
            continue;
        const char *which = i == 0 ? "never created" : "destroyed";
        char what[128];
        unsigned long long v = 12345;
        snprintf(what, sizeof what, "get_value of a %s session", which);
        r = t_get_value(t, ids[i], "a");
        CHECK(r == NULL, what);
        CHECK_ERROR(SESSION_ERROR_NOT_FOUND, what);
        free(r);
        snprintf(what, sizeof what, "set_value of a %s session", which);
        CHECK(t_set_value(t, ids[i], "a", "1") == 0, what);
        CHECK_ERROR(SESSION_ERROR_NOT_FOUND, what);
        snprintf(what, sizeof what, "delete_value of a %s session", which);
        CHECK(t_delete_value(t, ids[i], "a") == 0, what);
        CHECK_ERROR(SESSION_ERROR_NOT_FOUND, what);
        snprintf(what, sizeof what, "pop_value of a %s session", which);
        r = t_pop_value(t, ids[i], "a");
        CHECK(r == NULL, what);
        CHECK_ERROR(SESSION_ERROR_NOT_FOUND, what);
        free(r);
        snprintf(what, sizeof what, "get_versioned of a %s session", which);
        r = t_get_versioned(t, ids[i], &v);
        CHECK(r == NULL, what);
        CHECK_ERROR(SESSION_ERROR_NOT_FOUND, what);
        CHECK(v == 12345, "get_versioned writes *version only on success");
        free(r);
        snprintf(what, sizeof what, "update_if of a %s session", which);
        CHECK(t_update_if(t, ids[i], "{}", 1) == 0, what);
        CHECK_ERROR(SESSION_ERROR_NOT_FOUND, what);
        snprintf(what, sizeof what, "no call brought the %s session into being", which);
        CHECK(t_exists(t, ids[i]) == 0, what);
    }
    free(missing);
    free(gone);

    /* NULL and malformed ids. */
    suite = "NULL and malformed ids";
    const char *bad_ids[] = {NULL, "", "abc", "../../etc/passwd",
                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        unsigned long long v = 0;
        r = t_get_value(t, bad_ids[i], "a");
        CHECK(r == NULL, "get_value(bad id)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "get_value(bad id)");
        free(r);
        CHECK(t_set_value(t, bad_ids[i], "a", "1") == 0, "set_value(bad id)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "set_value(bad id)");
        CHECK(t_delete_value(t, bad_ids[i], "a") == 0, "delete_value(bad id)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "delete_value(bad id)");
        r = t_pop_value(t, bad_ids[i], "a");
        CHECK(r == NULL, "pop_value(bad id)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "pop_value(bad id)");
        free(r);
        r = t_get_versioned(t, bad_ids[i], &v);
        CHECK(r == NULL, "get_versioned(bad id)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "get_versioned(bad id)");
        free(r);
        CHECK(t_update_if(t, bad_ids[i], "{}", 1) == 0, "update_if(bad id)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "update_if(bad id)");
    }
}

/* Versions: grow with every write, not with reads or touch; update_if. */
static void test_versions(const target_t *t)
{
    suite = "versions and update_if";
    char *id = t_create(t, "{\"n\":0}");
    CHECK(is_session_id(id), "create");
    if (id == NULL)
        return;
    unsigned long long v0 = 0, v = 0;
    char *data = t_get_versioned(t, id, &v0);
    CHECK_STR(data, "{\"n\":0}", "get_versioned returns the data");
    CHECK_OK("get_versioned");
    free(data);

    /* Reads and touch leave the version alone. */
    data = t_get(t, id);
    free(data);
    data = t_get_value(t, id, "n");
    CHECK_STR(data, "0", "get_value");
    free(data);
    data = t_get_value(t, id, "missing");
    free(data);
    CHECK(t_touch(t, id), "touch");
    CHECK(t_exists(t, id) == 1, "exists");
    CHECK(t_ttl(t, id) > 0, "ttl");
    CHECK(t_delete_value(t, id, "missing"), "delete_value of a missing member");
    v = t_version(t, id);
    CHECK(v == v0, "get, get_value, touch, exists, ttl and delete_value of a missing member "
                   "leave the version");

    /* Every write makes a greater version. */
    CHECK(t_update(t, id, "{\"n\":1}"), "update");
    unsigned long long v1 = t_version(t, id);
    CHECK(v1 > v0, "update makes a greater version");

    CHECK(t_update_if(t, id, "{\"n\":99}", v0) == 0, "update_if with a stale version returns 0");
    CHECK_ERROR(SESSION_ERROR_CONFLICT, "update_if with a stale version");
    CHECK_DATA(t, id, "{\"n\":1}", "update_if with a stale version wrote nothing");
    CHECK(t_version(t, id) == v1, "update_if with a stale version left the version");
    CHECK(t_update_if(t, id, "{\"n\":99}", v1 + 1000) == 0,
          "update_if with a version never given returns 0");
    CHECK_ERROR(SESSION_ERROR_CONFLICT, "update_if with a version never given");
    CHECK_DATA(t, id, "{\"n\":1}", "update_if with a version never given wrote nothing");

    CHECK(t_update_if(t, id, "{\"n\":2}", v1), "update_if with the current version writes");
    CHECK_OK("update_if with the current version");
    CHECK_DATA(t, id, "{\"n\":2}", "update_if wrote the data");
    unsigned long long v2 = t_version(t, id);
    CHECK(v2 > v1, "update_if makes a greater version");
    CHECK(t_update_if(t, id, "{\"n\":3}", v1) == 0, "update_if with the version it replaced");
    CHECK_ERROR(SESSION_ERROR_CONFLICT, "a version is good for one update_if");
    CHECK_DATA(t, id, "{\"n\":2}", "the second update_if wrote nothing");

    CHECK(t_set_value(t, id, "x", "1"), "set_value");
    unsigned long long v3 = t_version(t, id);
    CHECK(v3 > v2, "set_value makes a greater version");
    CHECK(t_update_if(t, id, "{\"n\":4}", v2) == 0, "update_if after a set_value");
    CHECK_ERROR(SESSION_ERROR_CONFLICT, "update_if with the version before a set_value");

    CHECK(t_delete_value(t, id, "x"), "delete_value of a present member");
    unsigned long long v4 = t_version(t, id);
    CHECK(v4 > v3, "delete_value of a present member makes a greater version");

    CHECK(t_set_value(t, id, "flash", "\"hi\""), "set_value");
    unsigned long long v5 = t_version(t, id);
    CHECK(v5 > v4, "set_value makes a greater version");
    data = t_pop_value(t, id, "flash");
    CHECK_STR(data, "\"hi\"", "pop_value");
    free(data);
    unsigned long long v6 = t_version(t, id);
    CHECK(v6 > v5, "pop_value of a present member makes a greater version");
    data = t_pop_value(t, id, "flash");
    free(data);
    CHECK(t_version(t, id) >= v6, "pop_value of a missing member never lowers the version");
    v6 = t_version(t, id);
    CHECK_DATA(t, id, "{\"n\":2}", "data after the member writes");

    char *new_id = t_regenerate(t, id);
    CHECK(is_session_id(new_id), "regenerate");
    if (new_id != NULL) {
        unsigned long long v7 = 0;
        data = t_get_versioned(t, new_id, &v7);
        CHECK_STR(data, "{\"n\":2}", "get_versioned of the regenerated session");
        free(data);
        CHECK(v7 > v6, "regenerate makes a greater version");
        CHECK(t_update_if(t, new_id, "{\"n\":5}", v6) == 0,
              "update_if with the version from before regenerate");
        CHECK_ERROR(SESSION_ERROR_CONFLICT, "update_if with the version from before regenerate");
        /* The old id is gone. */
        CHECK(t_update_if(t, id, "{\"n\":5}", v6) == 0, "update_if of the old id");
        CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "update_if of the old id");
        CHECK(t_set_value(t, id, "x", "1") == 0, "set_value of the old id");
        CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "set_value of the old id");
        CHECK(t_exists(t, id) == 0, "the old id was not brought back");
        CHECK(t_update_if(t, new_id, "{\"n\":5}", v7), "update_if of the new id");
        CHECK_DATA(t, new_id, "{\"n\":5}", "update_if of the new id");
        CHECK(t_destroy(t, new_id), "destroy");
    }
    free(new_id);
    free(id);
}

/* 8 threads race to pop one flash message: exactly one gets it. */
typedef struct {
    target_t t;
    const char *id;
    pthread_barrier_t *barrier;
    char *got;
    int code;
} popper_t;

static void *popper(void *arg)
{
    popper_t *p = arg;
    pthread_barrier_wait(p->barrier);
    p->got = t_pop_value(&p->t, p->id, "flash");
    p->code = session_last_error_code();
    return NULL;
}

static void test_pop_race(session_store_t *global_handle)
{
    suite = "pop_value race";
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    int rounds_ok = 0;
    for (int round = 0; round < POP_ROUNDS; round++) {
        char data[96];
        snprintf(data, sizeof data, "{\"user\":1,\"flash\":\"message %d\",\"after\":2}", round);
        char *id = session_create(data);
        CHECK(is_session_id(id), "create");
        if (id == NULL)
            break;
        popper_t p[THREADS];
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++) {
            p[i].t.name = i % 2 ? "handle" : "global";
            p[i].t.h = i % 2 ? global_handle : NULL;
            p[i].t.global = p[i].t.h == NULL;
            p[i].id = id;
            p[i].barrier = &barrier;
            p[i].got = NULL;
            p[i].code = -1;
            if (pthread_create(&th[i], NULL, popper, &p[i]) != 0)
                die("pthread_create failed");
        }
        int winners = 0, empty = 0;
        char want[64];
        snprintf(want, sizeof want, "\"message %d\"", round);
        for (int i = 0; i < THREADS; i++) {
            pthread_join(th[i], NULL);
            if (same(p[i].got, want) && p[i].code == SESSION_ERROR_OK)
                winners++;
            else if (p[i].got == NULL && p[i].code == SESSION_ERROR_OK)
                empty++;
            else
                fprintf(stderr, "values_test: pop race round %d: thread %d got %s (code %d)\n",
                        round, i, p[i].got ? p[i].got : "NULL", p[i].code);
            free(p[i].got);
        }
        char *left = session_get(id);
        if (winners == 1 && empty == THREADS - 1 && same(left, "{\"user\":1,\"after\":2}"))
            rounds_ok++;
        else
            fprintf(stderr,
                    "values_test: pop race round %d: %d winners, %d empty, data left %s\n", round,
                    winners, empty, left ? left : "NULL");
        free(left);
        session_destroy(id);
        free(id);
    }
    pthread_barrier_destroy(&barrier);
    CHECK(rounds_ok == POP_ROUNDS,
          "in every round exactly one of 8 racing pop_value calls got the flash message");
}

/* Handle with max_data_size, regenerate_grace and idle_timeout. */
static void test_limits(void)
{
    scope = "handle with limits";
    suite = "max_data_size";
    char *config = config_with("\"max_data_size\": 64, \"regenerate_grace\": 10, "
                               "\"idle_timeout\": 100");
    session_store_t *h = session_store_open_json(config, NULL);
    free(config);
    CHECK(h != NULL, "session_store_open_json with max_data_size, grace and idle_timeout");
    if (h == NULL)
        return;
    target_t t = {"handle", 0, h};
    /* 50 bytes. */
    const char *orig = "{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    char *id = t_create(&t, orig);
    CHECK(is_session_id(id), "create");
    if (id != NULL) {
        unsigned long long v = t_version(&t, id);
        CHECK(t_set_value(&t, id, "b", "\"yyyyyyyyyyyyyyyyyy\"") == 0,
              "set_value over max_data_size returns 0");
        CHECK_ERROR(SESSION_ERROR_TOO_LARGE, "set_value over max_data_size");
        CHECK_DATA(&t, id, orig, "set_value over max_data_size left the data");
        CHECK(t_update_if(&t, id,
                          "{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
                          v) == 0,
              "update_if over max_data_size returns 0");
        CHECK_ERROR(SESSION_ERROR_TOO_LARGE, "update_if over max_data_size");
        CHECK(t_version(&t, id) == v, "refused writes left the version");
        CHECK(t_set_value(&t, id, "b", "1"), "set_value within max_data_size");
        CHECK_DATA(&t, id, "{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"b\":1}",
                   "set_value within max_data_size");

        /* With idle_timeout, touch writes the idle end and a get moves it once 1% of
           idle_timeout (1 s) has passed: neither changes the version. */
        suite = "idle end moves, version stays";
        v = t_version(&t, id);
        CHECK(t_touch(&t, id), "touch with idle_timeout");
        sleep_s(1.2);
        char *got = t_get(&t, id);
        free(got);
        got = t_get_value(&t, id, "b");
        CHECK_STR(got, "1", "get_value with idle_timeout");
        free(got);
        CHECK(t_version(&t, id) == v, "touch and gets that move the idle end leave the version");

        /* The old id of a regenerated session reads during its grace, read-only. */
        suite = "old id within regenerate_grace";
        char *new_id = t_regenerate(&t, id);
        CHECK(is_session_id(new_id), "regenerate with a grace");
        const char *now_data = "{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"b\":1}";
        if (new_id != NULL) {
            CHECK_VALUE(&t, id, "b", "1", "get_value of the old id within its grace");
            CHECK(t_set_value(&t, id, "b", "2") == 0, "set_value of the read-only old id");
            CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "set_value of the read-only old id");
            CHECK(t_delete_value(&t, id, "b") == 0, "delete_value of the read-only old id");
            CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "delete_value of the read-only old id");
            got = t_pop_value(&t, id, "b");
            CHECK(got == NULL, "pop_value of the read-only old id");
            CHECK_FAILED("pop_value of the read-only old id");
            free(got);
            unsigned long long old_v = 0;
            got = t_get_versioned(&t, id, &old_v);
            CHECK_STR(got, now_data, "get_versioned of the old id within its grace");
            free(got);
            CHECK(t_update_if(&t, id, "{}", old_v) == 0, "update_if of the read-only old id");
            CHECK_FAILED("update_if of the read-only old id");
            CHECK_DATA(&t, id, now_data, "the old id's data is untouched");
            CHECK_DATA(&t, new_id, now_data, "the new id's data is untouched");
            CHECK(t_set_value(&t, new_id, "b", "2"), "set_value of the new id");
            CHECK_DATA(&t, new_id, "{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"b\":2}",
                       "set_value of the new id");
            CHECK(t_destroy(&t, new_id), "destroy");
        }
        CHECK(t_destroy(&t, id), "destroy");
        free(new_id);
        free(id);
    }
    session_store_close(h);
}

static void test_null_handle(void)
{
    scope = "handles";
    suite = "NULL handle";
    char *id = session_create_id();
    unsigned long long v = 0;
    char *r = session_store_get_value(NULL, id, "a");
    CHECK(r == NULL, "session_store_get_value(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_get_value(NULL, ...)");
    free(r);
    CHECK(session_store_set_value(NULL, id, "a", "1") == 0, "session_store_set_value(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_set_value(NULL, ...)");
    CHECK(session_store_delete_value(NULL, id, "a") == 0, "session_store_delete_value(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_delete_value(NULL, ...)");
    r = session_store_pop_value(NULL, id, "a");
    CHECK(r == NULL, "session_store_pop_value(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_pop_value(NULL, ...)");
    free(r);
    r = session_store_get_versioned(NULL, id, &v);
    CHECK(r == NULL, "session_store_get_versioned(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_get_versioned(NULL, ...)");
    free(r);
    CHECK(session_store_update_if(NULL, id, "{}", 1) == 0, "session_store_update_if(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_update_if(NULL, ...)");
    free(id);
}

/* ---- 2. per-key concurrency ---------------------------------------------------- */

typedef struct {
    target_t t;
    const char *id;
    int proc;  /* process number (0 in the single-process part) */
    int index; /* thread number */
    int count; /* keys to set, or increments to make */
    int failures;
    long conflicts;
    char first[512]; /* the first failure */
} worker_t;

static void worker_failed(worker_t *w, const char *what, int k)
{
    int code = session_last_error_code();
    const char *msg = session_last_error();
    if (w->failures++ == 0)
        snprintf(w->first, sizeof w->first, "%s (step %d): code %d: %s", what, k, code,
                 msg ? msg : "(NULL)");
}

static void key_of(char *buf, size_t size, int proc, int thread, int k)
{
    snprintf(buf, size, "p%d.t%d.k%d", proc, thread, k);
}

static void value_of(char *buf, size_t size, int proc, int thread, int k)
{
    snprintf(buf, size, "[%d,%d,%d]", proc, thread, k);
}

static void *set_keys_worker(void *arg)
{
    worker_t *w = arg;
    char key[64], value[64];
    for (int k = 0; k < w->count; k++) {
        key_of(key, sizeof key, w->proc, w->index, k);
        value_of(value, sizeof value, w->proc, w->index, k);
        if (!t_set_value(&w->t, w->id, key, value)) {
            worker_failed(w, "set_value", k);
            continue;
        }
        if (k % 50 == 0) {
            char *got = t_get_value(&w->t, w->id, key);
            if (!same(got, value))
                worker_failed(w, "get_value of a key the thread just set", k);
            free(got);
        }
    }
    return NULL;
}

/* Runs `threads` set_keys workers on session `id`; odd threads use `handle`, even
   ones the global API. Returns the number of failures (each thread's first one
   printed). */
static int run_set_keys(const char *id, session_store_t *handle, int proc, int threads)
{
    worker_t w[THREADS];
    pthread_t th[THREADS];
    int failures = 0;
    for (int i = 0; i < threads; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].t.name = i % 2 ? "handle" : "global";
        w[i].t.h = i % 2 ? handle : NULL;
        w[i].t.global = w[i].t.h == NULL;
        w[i].id = id;
        w[i].proc = proc;
        w[i].index = i;
        w[i].count = keys_per_thread;
        if (pthread_create(&th[i], NULL, set_keys_worker, &w[i]) != 0)
            die("pthread_create failed");
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures) {
            fprintf(stderr, "values_test: process %d thread %d (%s): %d failures, first: %s\n",
                    proc, i, w[i].t.name, w[i].failures, w[i].first);
            failures += w[i].failures;
        }
    }
    return failures;
}

typedef struct {
    int procs, threads, keys;
    unsigned char *seen;
    long unexpected, duplicates, wrong_values;
} tally_t;

static void tally_member(const char *key, size_t key_len, const char *value, size_t value_len,
                         void *ctx)
{
    tally_t *tally = ctx;
    char k[64], want[64];
    int p, t, i;
    if (key_len >= sizeof k) {
        tally->unexpected++;
        return;
    }
    memcpy(k, key, key_len);
    k[key_len] = '\0';
    if (sscanf(k, "p%d.t%d.k%d", &p, &t, &i) != 3 || p < 0 || p >= tally->procs || t < 0 ||
        t >= tally->threads || i < 0 || i >= tally->keys) {
        tally->unexpected++;
        return;
    }
    key_of(want, sizeof want, p, t, i);
    if (strcmp(want, k) != 0) {
        tally->unexpected++;
        return;
    }
    unsigned char *seen = &tally->seen[((size_t)p * (size_t)tally->threads + (size_t)t) *
                                           (size_t)tally->keys +
                                       (size_t)i];
    if (*seen)
        tally->duplicates++;
    *seen = 1;
    value_of(want, sizeof want, p, t, i);
    if (value_len != strlen(want) || strncmp(value, want, value_len) != 0)
        tally->wrong_values++;
}

/* Checks that the data of `id` holds exactly the keys of procs x threads x keys,
   each once, with its value. */
static void check_all_keys(const char *id, int procs, int threads)
{
    char *data = session_get(id);
    CHECK(data != NULL, "get the session after the writers");
    if (data == NULL)
        return;
    tally_t tally = {procs, threads, keys_per_thread, NULL, 0, 0, 0};
    size_t total = (size_t)procs * (size_t)threads * (size_t)keys_per_thread;
    tally.seen = calloc(total, 1);
    if (tally.seen == NULL)
        die("out of memory");
    long members = for_each_member(data, tally_member, &tally);
    size_t seen = 0;
    for (size_t i = 0; i < total; i++)
        seen += tally.seen[i];
    char what[256];
    snprintf(what, sizeof what,
             "%d process(es) x %d threads x %d keys: expected %zu members, got %ld (%zu distinct "
             "expected keys, %ld unexpected, %ld duplicates, %ld wrong values, %zu bytes)",
             procs, threads, keys_per_thread, total, members, seen, tally.unexpected,
             tally.duplicates, tally.wrong_values, strlen(data));
    CHECK(members == (long)total && seen == total && tally.unexpected == 0 &&
              tally.duplicates == 0 && tally.wrong_values == 0,
          what);
    printf("values_test:   %s\n", what);
    free(tally.seen);
    free(data);
}

static void test_threads_set_keys(session_store_t *global_handle)
{
    scope = "concurrency";
    suite = "8 threads set distinct keys";
    char *id = session_create("{}");
    CHECK(is_session_id(id), "create {}");
    if (id == NULL)
        return;
    double t0 = now_s();
    int failures = run_set_keys(id, global_handle, 0, THREADS);
    double took = now_s() - t0;
    CHECK(failures == 0, "every set_value of the 8 threads succeeded");
    check_all_keys(id, 1, THREADS);
    printf("values_test: %d threads x %d set_value on one session: %.2f s\n", THREADS,
           keys_per_thread, took);
    CHECK(session_destroy(id), "destroy");
    free(id);
}

static void test_processes_set_keys(void)
{
    suite = "2 processes x 4 threads set distinct keys";
    if (driver == DRIVER_MEMORY) {
        printf("values_test: multi-process part skipped: the memory driver keeps sessions per "
               "process\n");
        return;
    }
    char *id = session_create("{}");
    CHECK(is_session_id(id), "create {}");
    if (id == NULL)
        return;
    /* Configured before fork(), as the README asks of pre-fork servers; no other
       thread is inside a libsession call. */
    fflush(stdout);
    fflush(stderr);
    double t0 = now_s();
    pid_t pids[PROCESSES];
    for (int p = 0; p < PROCESSES; p++) {
        pids[p] = fork();
        if (pids[p] < 0)
            die("fork failed: %s", strerror(errno));
        if (pids[p] == 0) {
            session_store_t *h = session_store(NULL);
            int failures = h == NULL ? 1 : run_set_keys(id, h, p, PROCESS_THREADS);
            if (h == NULL)
                fprintf(stderr, "values_test: process %d: session_store(NULL) failed: %s\n", p,
                        session_last_error() ? session_last_error() : "(NULL)");
            session_store_close(h);
            free(id);
            session_shutdown();
            fflush(stdout);
            fflush(stderr);
            _exit(failures == 0 ? 0 : 1);
        }
    }
    int children_ok = 0;
    for (int p = 0; p < PROCESSES; p++) {
        int status = 0;
        if (waitpid(pids[p], &status, 0) == pids[p] && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            children_ok++;
        else
            fprintf(stderr, "values_test: process %d ended with status 0x%x\n", p, status);
    }
    double took = now_s() - t0;
    CHECK(children_ok == PROCESSES, "every set_value of the 2 processes succeeded");
    check_all_keys(id, PROCESSES, PROCESS_THREADS);
    printf("values_test: %d processes x %d threads x %d set_value on one session: %.2f s\n",
           PROCESSES, PROCESS_THREADS, keys_per_thread, took);
    CHECK(session_destroy(id), "destroy");
    free(id);
}

/* ---- 3. compare-and-set concurrency ------------------------------------------ */

static void *increment_worker(void *arg)
{
    worker_t *w = arg;
    long last = -1;
    for (int k = 0; k < w->count;) {
        unsigned long long version = 0;
        char *data = t_get_versioned(&w->t, w->id, &version);
        if (data == NULL) {
            worker_failed(w, "get_versioned", k);
            return NULL;
        }
        char *end = NULL;
        long n = strtol(data, &end, 10);
        int number = end != data && *end == '\0';
        free(data);
        if (!number) {
            worker_failed(w, "the counter is not a number", k);
            return NULL;
        }
        if (n < last) {
            worker_failed(w, "the counter went backwards", k);
            return NULL;
        }
        last = n;
        char next[32];
        snprintf(next, sizeof next, "%ld", n + 1);
        if (t_update_if(&w->t, w->id, next, version)) {
            k++;
            continue;
        }
        if (session_last_error_code() == SESSION_ERROR_CONFLICT) {
            w->conflicts++;
            continue;
        }
        worker_failed(w, "update_if", k);
        return NULL;
    }
    return NULL;
}

static void test_threads_increment(session_store_t *global_handle)
{
    suite = "8 threads increment with update_if";
    char *id = session_create("0");
    CHECK(is_session_id(id), "create \"0\"");
    if (id == NULL)
        return;
    unsigned long long v0 = 0;
    char *data = session_get_versioned(id, &v0);
    free(data);
    worker_t w[THREADS];
    pthread_t th[THREADS];
    double t0 = now_s();
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].t.name = i % 2 ? "handle" : "global";
        w[i].t.h = i % 2 ? global_handle : NULL;
        w[i].t.global = w[i].t.h == NULL;
        w[i].id = id;
        w[i].index = i;
        w[i].count = increments_per_thread;
        if (pthread_create(&th[i], NULL, increment_worker, &w[i]) != 0)
            die("pthread_create failed");
    }
    int failures = 0;
    long conflicts = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        conflicts += w[i].conflicts;
        if (w[i].failures) {
            fprintf(stderr, "values_test: increment thread %d (%s): %s\n", i, w[i].t.name,
                    w[i].first);
            failures += w[i].failures;
        }
    }
    double took = now_s() - t0;
    CHECK(failures == 0, "every increment thread finished");
    char want[32];
    snprintf(want, sizeof want, "%d", THREADS * increments_per_thread);
    unsigned long long v1 = 0;
    data = session_get_versioned(id, &v1);
    char what[128];
    snprintf(what, sizeof what, "the counter ends at exactly %s", want);
    CHECK_STR(data, want, what);
    free(data);
    CHECK(v1 > v0, "the counter's version grew");
    printf("values_test: %d threads x %d update_if increments: counter %s, %ld conflicts "
           "retried, %.2f s\n",
           THREADS, increments_per_thread, want, conflicts, took);
    CHECK(session_destroy(id), "destroy");
    free(id);
}

/* ---- main ------------------------------------------------------------------------ */

static void run_target(target_t *t)
{
    scope = t->name;
    test_get_set_delete_pop(t);
    test_invalid(t);
    test_versions(t);
}

static int parse_count(const char *s, const char *what)
{
    char *end = NULL;
    long n = strtol(s, &end, 10);
    if (end == s || *end != '\0' || n < 1 || n > 1000000)
        die("%s must be a number from 1 to 1000000, got \"%s\"", what, s);
    return (int)n;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: values_test CONFIG_JSON [KEYS_PER_THREAD [INCREMENTS_PER_THREAD]]\n");
        return 2;
    }
    base_config = argv[1];
    if (argc > 2)
        keys_per_thread = parse_count(argv[2], "KEYS_PER_THREAD");
    if (argc > 3)
        increments_per_thread = parse_count(argv[3], "INCREMENTS_PER_THREAD");
    const char *reserved[] = {"\"max_data_size\"", "\"regenerate_grace\"", "\"idle_timeout\""};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strstr(base_config, reserved[i]) != NULL)
            die("CONFIG_JSON must not set %s: the test sets it", reserved[i]);
    create_roots(base_config);
    driver = driver_of(base_config);
    printf("values_test: %s driver, %d keys per thread, %d increments per thread, config %s\n",
           driver_name(), keys_per_thread, increments_per_thread, base_config);
    double t0 = now_s();

    /* 1. Semantics on the global API, then on a handle. */
    CHECK(session_init_json(base_config), "session_init_json");
    CHECK_OK("session_init_json");
    target_t global = {"global", 1, NULL};
    run_target(&global);
    session_store_t *opened = session_store_open_json(base_config, NULL);
    CHECK(opened != NULL, "session_store_open_json");
    if (opened != NULL) {
        target_t handle = {"handle", 0, opened};
        run_target(&handle);
        session_store_close(opened);
    }
    test_null_handle();
    test_limits();
    printf("values_test: semantics: %.2f s\n", now_s() - t0);

    /* 2 and 3. Concurrency, on the global store: even threads through the global
       API, odd ones through a handle on the same store. */
    scope = "concurrency";
    session_store_t *global_handle = session_store(NULL);
    CHECK(global_handle != NULL, "session_store(NULL)");
    if (global_handle != NULL) {
        test_pop_race(global_handle);
        test_threads_set_keys(global_handle);
        test_threads_increment(global_handle);
        session_store_close(global_handle);
    }
    /* After the threads are joined and the handle is closed: fork() with no other
       thread inside a libsession call. */
    test_processes_set_keys();

    session_shutdown();
    printf("values_test: total %.2f s\n", now_s() - t0);
    return summary();
}
