/*
 * test_support.h - scaffolding shared by the C test programs of libsession
 * (lifecycle_test.c, values_test.c): pass/fail counters and the CHECK* macros,
 * setup helpers (die, xmalloc, mkdir_p), a reader of the CONFIG_JSON argument
 * (create_roots, settings_start, driver_of, config_with) and target_t, the API
 * under test: the global functions or a session_store_t handle.
 *
 * Define TEST_NAME (the program's name, a string literal, which starts its
 * messages) and _XOPEN_SOURCE before including it. Everything is static or a
 * macro, so what a program does not use does not warn.
 */
#ifndef SESSION_TEST_SUPPORT_H
#define SESSION_TEST_SUPPORT_H

#ifndef TEST_NAME
#error "define TEST_NAME before including test_support.h"
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "session.h"

enum driver { DRIVER_FILE, DRIVER_MEMORY, DRIVER_REDIS };

static int passed, failed;
static const char *suite = "setup";
static const char *scope = "-";
static enum driver driver;
static const char *base_config;

/* ---- checks (fail_at: main thread only) ---------------------------------------- */

static inline void fail_at(int line, const char *cond, const char *fmt, ...)
{
    /* Read the last error first: nothing below calls libsession. */
    int code = session_last_error_code();
    const char *msg = session_last_error();
    va_list ap;
    fprintf(stderr, TEST_NAME ": FAILED [%s, %s] line %d: ", scope, suite, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  condition: %s\n  last error: code %d: %s\n", cond, code,
            msg ? msg : "(NULL)");
    failed++;
}

/* Prints "TEST_NAME: N passed, M failed"; the exit status: 1 if any check failed. */
static inline int summary(void)
{
    printf(TEST_NAME ": %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (cond)                                                                                  \
            passed++;                                                                              \
        else                                                                                       \
            fail_at(__LINE__, #cond, "%s", what);                                                  \
    } while (0)

/* The last call failed with `code` and left a message. */
#define CHECK_ERROR(code, what)                                                                    \
    do {                                                                                           \
        int got_ = session_last_error_code();                                                      \
        if (got_ != (int)(code))                                                                   \
            fail_at(__LINE__, #code, "%s: error code %d, expected %d", what, got_, (int)(code));  \
        else if (session_last_error() == NULL)                                                     \
            fail_at(__LINE__, "session_last_error() != NULL", "%s: no error message", what);      \
        else                                                                                       \
            passed++;                                                                              \
    } while (0)

/* The last call failed (any code) and left a message. */
#define CHECK_FAILED(what)                                                                         \
    do {                                                                                           \
        if (session_last_error_code() == SESSION_ERROR_OK || session_last_error() == NULL)         \
            fail_at(__LINE__, "last error set", "%s: no error code or message", what);           \
        else                                                                                       \
            passed++;                                                                              \
    } while (0)

/* The last call succeeded: code OK and no message. */
#define CHECK_OK(what)                                                                             \
    do {                                                                                           \
        if (session_last_error_code() != SESSION_ERROR_OK || session_last_error() != NULL)         \
            fail_at(__LINE__, "last error is OK", "%s: last error not cleared", what);            \
        else                                                                                       \
            passed++;                                                                              \
    } while (0)

/* The last error message contains `part`. */
#define CHECK_MESSAGE(part, what)                                                                  \
    do {                                                                                           \
        const char *msg_ = session_last_error();                                                   \
        if (msg_ == NULL || strstr(msg_, (part)) == NULL)                                          \
            fail_at(__LINE__, "message contains " #part, "%s: message does not contain \"%s\"",   \
                    what, (part));                                                                 \
        else                                                                                       \
            passed++;                                                                              \
    } while (0)

#define CHECK_RANGE(value, lo, hi, what)                                                           \
    do {                                                                                           \
        long v_ = (long)(value);                                                                   \
        if (v_ < (long)(lo) || v_ > (long)(hi))                                                    \
            fail_at(__LINE__, #lo " <= " #value " <= " #hi, "%s: got %ld, expected %ld..%ld",     \
                    what, v_, (long)(lo), (long)(hi));                                            \
        else                                                                                       \
            passed++;                                                                              \
    } while (0)

/* A returned string equals `want` (NULL `want`: the string is NULL). */
#define CHECK_STR(got, want, what)                                                                 \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (w_ == NULL ? g_ == NULL : (g_ != NULL && strcmp(g_, w_) == 0))                         \
            passed++;                                                                              \
        else                                                                                       \
            fail_at(__LINE__, #got " == " #want, "%s: got %s%.200s%s, expected %s%.200s%s", what, \
                    g_ ? "\"" : "", g_ ? g_ : "NULL", g_ ? "\"" : "", w_ ? "\"" : "",              \
                    w_ ? w_ : "NULL", w_ ? "\"" : "");                                             \
    } while (0)

static inline int is_session_id(const char *s)
{
    if (s == NULL || strlen(s) != SESSION_ID_LEN)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static inline int same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* ---- time ------------------------------------------------------------------- */

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps until now_s() reaches t. */
static inline void sleep_until(double t)
{
    for (;;) {
        double left = t - now_s();
        if (left <= 0)
            return;
        struct timespec ts;
        ts.tv_sec = (time_t)left;
        ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
    }
}

/* ---- setup helpers ------------------------------------------------------------ */

static inline void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, TEST_NAME ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(2);
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        die("out of memory");
    return p;
}

static inline void mkdir_p(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        die("path too long: %s", path);
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        die("cannot create %s: %s", buf, strerror(errno));
}

static inline const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* After `"key"` at p: skips `:` and white space; NULL if no colon follows. */
static inline const char *after_colon(const char *p)
{
    p = skip_ws(p);
    if (*p != ':')
        return NULL;
    return skip_ws(p + 1);
}

/* Creates every storage root the config names ("root": "PATH"; PATH without
   escapes): a file store's root must exist before init. */
static inline void create_roots(const char *config)
{
    for (const char *p = strstr(config, "\"root\""); p != NULL; p = strstr(p + 1, "\"root\"")) {
        const char *v = after_colon(p + 6);
        if (v == NULL || *v != '"')
            continue;
        const char *end = strchr(v + 1, '"');
        if (end == NULL)
            continue;
        char path[4096];
        size_t len = (size_t)(end - (v + 1));
        if (len == 0 || len >= sizeof path)
            die("bad root in the config");
        memcpy(path, v + 1, len);
        path[len] = '\0';
        mkdir_p(path);
    }
}

/* Where the settings object of the default store starts in `config`: just after
   its '{'. */
static inline const char *settings_start(const char *config)
{
    const char *p = strstr(config, "\"sessions\"");
    if (p == NULL || (p = after_colon(p + 10)) == NULL || *p != '{')
        die("CONFIG_JSON has no \"sessions\" object");
    const char *inner = skip_ws(p + 1);
    if (strncmp(inner, "\"default\"", 9) == 0) {
        const char *q = after_colon(inner + 9);
        if (q != NULL && *q == '{')
            return q + 1;
    }
    return p + 1;
}

/* The driver of the default store, read from its "driver" key. */
static inline enum driver driver_of(const char *config)
{
    const char *p = strstr(settings_start(config), "\"driver\"");
    const char *v = p ? after_colon(p + 8) : NULL;
    if (v == NULL)
        return DRIVER_FILE; /* the default driver is "storage" */
    if (strncmp(v, "\"memory\"", 8) == 0)
        return DRIVER_MEMORY;
    if (strncmp(v, "\"redis\"", 7) == 0)
        return DRIVER_REDIS;
    return DRIVER_FILE;
}

/* The base config with `extra` ("key": value, ...) added to the default store's
   settings. Free the result. */
static inline char *config_with(const char *extra)
{
    const char *at = settings_start(base_config);
    size_t head = (size_t)(at - base_config);
    int empty = *skip_ws(at) == '}';
    size_t size = strlen(base_config) + strlen(extra) + 8;
    char *out = xmalloc(size);
    snprintf(out, size, "%.*s%s%s%s", (int)head, base_config, extra, empty ? "" : ", ", at);
    return out;
}

static inline const char *driver_name(void)
{
    return driver == DRIVER_MEMORY ? "memory" : driver == DRIVER_REDIS ? "redis" : "file";
}

/* ---- the API under test: the global functions, or a handle ---------------------- */

typedef struct {
    const char *name;
    int global;         /* 1: session_X(); 0: session_store_X(h) */
    session_store_t *h; /* the handle, when not global */
} target_t;

static inline char *t_create(const target_t *t, const char *data)
{
    return t->global ? session_create(data) : session_store_create(t->h, data);
}

static inline char *t_get(const target_t *t, const char *id)
{
    return t->global ? session_get(id) : session_store_get(t->h, id);
}

static inline int t_update(const target_t *t, const char *id, const char *data)
{
    return t->global ? session_update(id, data) : session_store_update(t->h, id, data);
}

static inline int t_destroy(const target_t *t, const char *id)
{
    return t->global ? session_destroy(id) : session_store_destroy(t->h, id);
}

static inline int t_touch(const target_t *t, const char *id)
{
    return t->global ? session_touch(id) : session_store_touch(t->h, id);
}

static inline long t_ttl(const target_t *t, const char *id)
{
    return t->global ? session_ttl(id) : session_store_ttl(t->h, id);
}

static inline int t_exists(const target_t *t, const char *id)
{
    return t->global ? session_exists(id) : session_store_exists(t->h, id);
}

static inline char *t_regenerate(const target_t *t, const char *id)
{
    return t->global ? session_regenerate(id) : session_store_regenerate(t->h, id);
}

#endif /* SESSION_TEST_SUPPORT_H */
