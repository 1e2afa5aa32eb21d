/*
 * api_test.c - a test of the libsession C ABI, through include/session.h.
 *
 * Usage: api_test DIR
 *   Runs the suite on the file driver with storage roots under DIR, then again on
 *   the memory driver. A storage root must exist (libsession creates only
 *   ROOT/sessions), so the test creates DIR and each root with mkdir before the
 *   init that names it. Stops with a non-zero exit and a
 *   message at the first failure; ends with "api_test: N passed, 0 failed".
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "session.h"

#define MIB (1024 * 1024)

static int passed;
static const char *suite = "setup";

static void fail(int line, const char *cond, const char *fmt, ...)
{
    /* Read the last error first: nothing below calls libsession. */
    int code = session_last_error_code();
    const char *msg = session_last_error();
    va_list ap;
    fprintf(stderr, "api_test: FAILED [%s] line %d: ", suite, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  condition: %s\n  last error: code %d: %s\n", cond, code,
            msg ? msg : "(NULL)");
    fprintf(stderr, "api_test: %d passed, 1 failed\n", passed);
    exit(1);
}

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(__LINE__, #cond, "%s", what);                                                     \
        passed++;                                                                                  \
    } while (0)

/* The last call failed with `code` and left a message. */
#define CHECK_ERROR(code, what)                                                                    \
    do {                                                                                           \
        int got_ = session_last_error_code();                                                      \
        if (got_ != (code))                                                                        \
            fail(__LINE__, #code, "%s: error code %d, expected %d", what, got_, (int)(code));     \
        if (session_last_error() == NULL)                                                          \
            fail(__LINE__, "session_last_error() != NULL", "%s: no error message", what);         \
        passed++;                                                                                  \
    } while (0)

/* The last call succeeded: code OK and no message. */
#define CHECK_OK(what)                                                                             \
    do {                                                                                           \
        if (session_last_error_code() != SESSION_ERROR_OK || session_last_error() != NULL)         \
            fail(__LINE__, "last error is OK", "%s: last error not cleared", what);               \
        passed++;                                                                                  \
    } while (0)

static int is_session_id(const char *s)
{
    if (s == NULL || strlen(s) != SESSION_ID_LEN)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* Number of entries of a directory (without . and ..); -1 if it cannot be read. */
static int count_entries(const char *path, int only_session_ids)
{
    DIR *dir = opendir(path);
    if (dir == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (!only_session_ids || is_session_id(e->d_name))
            n++;
    }
    closedir(dir);
    return n;
}

/* snprintf for paths: a path that does not fit is a setup error. */
static void pathf(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "api_test: path too long\n");
        exit(2);
    }
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "api_test: cannot create %s: %s\n", buf, strerror(errno));
        exit(1);
    }
}

/* A file-driver config with storage root `root`, or a memory config if root is NULL. */
static void make_config(char *buf, size_t size, const char *root, int lifetime, long max_data_size)
{
    if (root == NULL)
        snprintf(buf, size,
                 "{\"sessions\": {\"driver\": \"memory\", \"lifetime\": %d, \"max_data_size\": %ld}}",
                 lifetime, max_data_size);
    else
        snprintf(buf, size,
                 "{\"sessions\": {\"driver\": \"storage\", \"storage_name\": \"s\", \"lifetime\": %d, "
                 "\"max_data_size\": %ld}, \"storages\": {\"s\": {\"type\": \"filesystem\", "
                 "\"root\": \"%s\"}}}",
                 lifetime, max_data_size, root);
}

static void init_or_die(const char *json)
{
    CHECK(session_init_json(json) != 0, "session_init_json of a valid config");
    CHECK_OK("session_init_json");
}

/* session_get(id) returns exactly `len` bytes equal to `want`. */
static void check_data(const char *id, const char *want, size_t len, const char *what)
{
    char *got = session_get(id);
    if (got == NULL)
        fail(__LINE__, "session_get(id) != NULL", "%s: session_get returned NULL", what);
    CHECK_OK(what);
    if (strlen(got) != len || memcmp(got, want, len) != 0)
        fail(__LINE__, "data equal", "%s: session_get returned %zu bytes, expected %zu", what,
             strlen(got), len);
    passed++;
    free(got);
}

static void check_gone(const char *id, const char *what)
{
    char *got = session_get(id);
    CHECK(got == NULL, what);
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, what);
}

static void test_null_arguments(void)
{
    suite = "NULL arguments";
    char *id = session_create("{\"probe\":1}");
    CHECK(id != NULL, "session_create for the NULL tests");

    CHECK(session_create(NULL) == NULL, "session_create(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_create(NULL)");
    CHECK(session_get(NULL) == NULL, "session_get(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_get(NULL)");
    CHECK(session_update(NULL, "{}") == 0, "session_update(NULL, data)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_update(NULL, data)");
    CHECK(session_update(id, NULL) == 0, "session_update(id, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_update(id, NULL)");
    CHECK(session_update(NULL, NULL) == 0, "session_update(NULL, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_update(NULL, NULL)");
    CHECK(session_destroy(NULL) == 0, "session_destroy(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_destroy(NULL)");
    CHECK(session_init(NULL) == 0, "session_init(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_init(NULL)");
    CHECK(session_init_json(NULL) == 0, "session_init_json(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_init_json(NULL)");
    /* session_free leaves the last error alone, like free() leaves errno: the
     * error of the failed session_init_json above is still there. */
    session_free(NULL);
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_free(NULL) keeps the last error");

    /* The NULL update did not change the session; the failed inits kept the store. */
    check_data(id, "{\"probe\":1}", 11, "session intact after NULL arguments");
    CHECK(session_destroy(id) != 0, "session_destroy");
    session_free(id); /* session_free works on strings from session_create */
    CHECK_OK("session_free(id)");
}

static void test_ids(void)
{
    suite = "session_create_id";
    char *a = session_create_id();
    CHECK_OK("session_create_id");
    char *b = session_create_id();
    CHECK(a != NULL && b != NULL, "session_create_id returns non-NULL");
    CHECK(is_session_id(a) && is_session_id(b), "session_create_id gives 64 lowercase hex characters");
    CHECK(strcmp(a, b) != 0, "two session_create_id calls differ");
    /* A generated id was never stored. */
    check_gone(a, "session_get of a generated but unused id");
    CHECK(session_update(a, "x") == 0, "session_update of an unused id");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "session_update of an unused id");
    check_gone(a, "session_update did not create the session");
    free(a);
    free(b);
}

static void test_hostile_ids(const char *session_dir, const char *root)
{
    suite = "hostile ids";
    char *valid = session_create("{\"hostile\":true}");
    CHECK(valid != NULL, "session_create");

    char len63[64], len65[66], upper[65], slash[65], dots[65];
    memset(len63, 'a', 63);
    len63[63] = '\0';
    memset(len65, 'a', 65);
    len65[65] = '\0';
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(valid[i] >= 'a' && valid[i] <= 'f' ? valid[i] - 'a' + 'A' : valid[i]);
    upper[64] = '\0';
    if (strcmp(upper, valid) == 0)
        upper[0] = 'A'; /* an id without any letter: force one upper-case letter */
    memset(slash, 'a', 64);
    slash[20] = '/';
    slash[64] = '\0';
    memset(dots, 'a', 64);
    memcpy(dots, "../", 3);
    dots[64] = '\0';
    char *huge = malloc(MIB + 1);
    CHECK(huge != NULL, "malloc");
    memset(huge, 'a', MIB);
    huge[MIB] = '\0';
    /* 64 valid hex characters followed by more: must not be truncated to 64. */
    char prefix_plus[70];
    snprintf(prefix_plus, sizeof prefix_plus, "%sab", valid);

    const char *hostile[] = {"../../etc/passwd", len63, len65, upper, slash, dots, "",
                             huge, prefix_plus, "/etc/passwd"};
    const char *names[] = {"../../etc/passwd", "63 characters", "65 characters",
                           "64 upper-case hex", "64 characters with a '/'", "64 characters starting ../",
                           "empty string", "1 MB of 'a'", "a valid id plus 2 characters", "/etc/passwd"};
    size_t n = sizeof hostile / sizeof hostile[0];

    int cwd_before = count_entries(".", 0);
    int root_before = root ? count_entries(root, 0) : 0;
    int dir_before = session_dir ? count_entries(session_dir, 0) : 0;

    for (size_t i = 0; i < n; i++) {
        char what[128];
        snprintf(what, sizeof what, "session_get(%s)", names[i]);
        CHECK(session_get(hostile[i]) == NULL, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
        snprintf(what, sizeof what, "session_update(%s)", names[i]);
        CHECK(session_update(hostile[i], "{\"evil\":1}") == 0, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
        snprintf(what, sizeof what, "session_destroy(%s)", names[i]);
        CHECK(session_destroy(hostile[i]) == 0, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
    }

    CHECK(count_entries(".", 0) == cwd_before, "nothing created in the cwd");
    if (root != NULL) {
        CHECK(count_entries(root, 0) == root_before, "nothing created in the storage root");
        CHECK(count_entries(session_dir, 0) == dir_before, "nothing created in the session directory");
        char path[4096];
        pathf(path, sizeof path, "%s/../etc", root);
        CHECK(!exists(path), "nothing created at <root>/../etc");
        pathf(path, sizeof path, "%s/../../etc/passwd", session_dir);
        CHECK(!exists(path) || strcmp(root, "/") == 0, "nothing created at <dir>/../../etc/passwd");
    }
    /* The upper-case twin of a live id does not reach it. */
    check_data(valid, "{\"hostile\":true}", 16, "the valid session is untouched");
    CHECK(session_destroy(valid) != 0, "session_destroy");
    free(valid);
    free(huge);
}

static void test_round_trip(const char *session_dir)
{
    suite = "round trip";
    char *id = session_create("{\"user\":\"alice\"}");
    CHECK(id != NULL, "session_create");
    CHECK_OK("session_create");
    CHECK(is_session_id(id), "session_create returns 64 lowercase hex characters");
    check_data(id, "{\"user\":\"alice\"}", 16, "session_get after create");

    if (session_dir != NULL) {
        char path[4096];
        struct stat st;
        pathf(path, sizeof path, "%s/%s", session_dir, id);
        CHECK(stat(path, &st) == 0, "the session file exists in the session directory");
        CHECK(S_ISREG(st.st_mode), "the session file is a regular file");
        CHECK((st.st_mode & 07777) == 0600, "the session file is mode 0600");
        CHECK(stat(session_dir, &st) == 0, "stat of the session directory");
        CHECK((st.st_mode & 07777) == 0700, "the session directory is mode 0700");
    }

    CHECK(session_update(id, "{\"user\":\"alice\",\"n\":2}") != 0, "session_update");
    CHECK_OK("session_update");
    check_data(id, "{\"user\":\"alice\",\"n\":2}", 22, "session_get after update");
    /* Shorter then longer data: no leftovers from the previous version. */
    CHECK(session_update(id, "{}") != 0, "session_update to shorter data");
    check_data(id, "{}", 2, "session_get after a shorter update");
    char longer[5000];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CHECK(session_update(id, longer) != 0, "session_update to longer data");
    check_data(id, longer, sizeof longer - 1, "session_get after a longer update");

    /* Empty data is data. */
    char *empty = session_create("");
    CHECK(empty != NULL, "session_create(\"\")");
    check_data(empty, "", 0, "session_get of an empty session");
    CHECK(session_update(empty, "") != 0, "session_update with \"\"");
    CHECK(session_destroy(empty) != 0, "session_destroy");
    free(empty);

    CHECK(session_destroy(id) != 0, "session_destroy");
    CHECK_OK("session_destroy");
    check_gone(id, "session_get after destroy");
    CHECK(session_destroy(id) != 0, "session_destroy of an already destroyed session");
    CHECK_OK("session_destroy of an already destroyed session");
    CHECK(session_update(id, "{\"back\":1}") == 0, "session_update after destroy");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "session_update after destroy");
    check_gone(id, "session_get after update-after-destroy (no resurrection)");
    if (session_dir != NULL) {
        char path[4096];
        pathf(path, sizeof path, "%s/%s", session_dir, id);
        CHECK(!exists(path), "no session file after destroy");
    }
    free(id);

    /* Many sessions are distinct. */
    char *ids[20];
    for (int i = 0; i < 20; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        ids[i] = session_create(data);
        CHECK(ids[i] != NULL, "session_create in a loop");
    }
    for (int i = 0; i < 20; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        check_data(ids[i], data, strlen(data), "each session keeps its own data");
        for (int j = 0; j < i; j++)
            CHECK(strcmp(ids[i], ids[j]) != 0, "ids are unique");
    }
    for (int i = 0; i < 20; i++) {
        CHECK(session_destroy(ids[i]) != 0, "session_destroy");
        free(ids[i]);
    }
}

static void test_binary_data(void)
{
    suite = "binary data";
    /* Every non-NUL byte: 0x80..0xff first, then 0x01..0x7f, then JSON-hostile text. */
    char data[512];
    size_t len = 0;
    for (int b = 0x80; b <= 0xff; b++)
        data[len++] = (char)b;
    for (int b = 0x01; b <= 0x7f; b++)
        data[len++] = (char)b;
    const char *tail = "\"quotes\" 'single' \\backslash\\ \n\r\n\t{\"a\":\"\xc3\x28\"}\xff\xfe";
    memcpy(data + len, tail, strlen(tail));
    len += strlen(tail);
    data[len] = '\0';

    char *id = session_create(data);
    CHECK(id != NULL, "session_create with non-UTF-8 data");
    check_data(id, data, len, "non-UTF-8 data round-trips after create");

    /* Reversed through update. */
    char rev[512];
    for (size_t i = 0; i < len; i++)
        rev[i] = data[len - 1 - i];
    rev[len] = '\0';
    CHECK(session_update(id, rev) != 0, "session_update with non-UTF-8 data");
    check_data(id, rev, len, "non-UTF-8 data round-trips after update");
    CHECK(session_destroy(id) != 0, "session_destroy");
    free(id);
}

static void test_sizes(int configured_max, const char *what_store)
{
    suite = "data size";
    (void)what_store;
    size_t max = (size_t)configured_max;
    char *big = malloc(max + 2);
    CHECK(big != NULL, "malloc");
    for (size_t i = 0; i < max + 1; i++)
        big[i] = (char)('A' + i % 26);

    /* Exactly max_data_size bytes round-trip. */
    big[max] = '\0';
    char *id = session_create(big);
    CHECK(id != NULL, "session_create with exactly max_data_size bytes");
    check_data(id, big, max, "max_data_size bytes round-trip");

    /* One byte more is refused, by create and by update. */
    big[max] = 'Z';
    big[max + 1] = '\0';
    CHECK(session_create(big) == NULL, "session_create with max_data_size + 1 bytes");
    CHECK_ERROR(SESSION_ERROR_TOO_LARGE, "session_create with max_data_size + 1 bytes");
    CHECK(session_update(id, big) == 0, "session_update with max_data_size + 1 bytes");
    CHECK_ERROR(SESSION_ERROR_TOO_LARGE, "session_update with max_data_size + 1 bytes");
    big[max] = '\0';
    check_data(id, big, max, "the refused update left the data alone");

    /* Shrink, then grow back to the maximum: the file driver reuses its areas. */
    CHECK(session_update(id, "small") != 0, "session_update to small data");
    check_data(id, "small", 5, "small data after large");
    big[0] = '#';
    CHECK(session_update(id, big) != 0, "session_update back to max_data_size bytes");
    check_data(id, big, max, "max_data_size bytes after small");

    CHECK(session_destroy(id) != 0, "session_destroy");
    free(id);
    free(big);
}

static void test_config_errors(const char *root, const char *good_config)
{
    suite = "configuration errors";
    char *id = session_create("{\"kept\":true}");
    CHECK(id != NULL, "session_create before the bad configs");

    struct {
        const char *json;
        const char *must_contain;
    } bad[] = {
        {"{\"sessions\": {\"driver\": \"memory\", \"lifetime\": 0}}", "sessions.lifetime"},
        {"{\"sessions\": {\"driver\": \"memory\", \"lifetime\": -5}}", "sessions.lifetime"},
        {"{\"sessions\": {\"driver\": \"memory\", \"lifetime\": \"1h\"}}", "sessions.lifetime"},
        {"{\"sessions\": {\"driver\": \"mongo\"}}", "mongo"},
        {"{\"sessions\": {\"driver\": \"storage\", \"storage_name\": \"nosuchstore\"}, "
         "\"storages\": {\"other\": {\"type\": \"filesystem\", \"root\": \"/tmp\"}}}",
         "nosuchstore"},
        {"{\"sessions\": {\"driver\": \"storage\", \"storage_name\": \"s3x\"}, "
         "\"storages\": {\"s3x\": {\"type\": \"s3\", \"root\": \"/tmp\"}}}",
         "s3"},
        {"{\"sessions\": {\"driver\": \"memory\", \"max_data_size\": 0}}", "sessions.max_data_size"},
        {"{\"sessions\": {\"driver\": \"memory\", \"lifetim\": 10}}", "lifetim"},
        {"{\"sessions\": 5}", "sessions"},
        {"{}", "sessions"},
        {"not json at all", "JSON"},
        {"", "JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[256];
        snprintf(what, sizeof what, "session_init_json(%s)", bad[i].json);
        CHECK(session_init_json(bad[i].json) == 0, what);
        CHECK_ERROR(SESSION_ERROR_CONFIG, what);
        const char *msg = session_last_error();
        if (strstr(msg, bad[i].must_contain) == NULL)
            fail(__LINE__, "message names the key", "%s: message \"%s\" does not contain \"%s\"", what,
                 msg, bad[i].must_contain);
        passed++;
        check_data(id, "{\"kept\":true}", 13, "the previous configuration is kept");
    }

    CHECK(session_init("/nonexistent/libsession/config.json") == 0, "session_init of a missing file");
    CHECK_ERROR(SESSION_ERROR_CONFIG, "session_init of a missing file");
    CHECK(strstr(session_last_error(), "/nonexistent/libsession/config.json") != NULL,
          "the message names the missing file");
    check_data(id, "{\"kept\":true}", 13, "the previous configuration is kept after session_init");

    /* A storage root must exist: init refuses a missing one, names it, and creates
       nothing (only ROOT/sessions is ever created, inside an existing root). */
    if (root != NULL) {
        char missing[4096], config[8192];
        pathf(missing, sizeof missing, "%s/no-such-root", root);
        make_config(config, sizeof config, missing, 3600, MIB);
        CHECK(session_init_json(config) == 0, "session_init_json with a missing storage root");
        CHECK_ERROR(SESSION_ERROR_CONFIG, "session_init_json with a missing storage root");
        CHECK(strstr(session_last_error(), missing) != NULL, "the message names the missing root");
        CHECK(!exists(missing), "the missing storage root was not created");
        check_data(id, "{\"kept\":true}", 13, "the previous configuration is kept after a missing root");
    }

    /* session_init of a real file, with the same settings: the store carries on. */
    if (root != NULL) {
        char path[4096];
        pathf(path, sizeof path, "%s/config.json", root);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL, "write config.json");
        fprintf(f, "%s\n", good_config);
        fclose(f);
        CHECK(session_init(path) != 0, "session_init of a valid config file");
        CHECK_OK("session_init");
        check_data(id, "{\"kept\":true}", 13, "the session survives re-init on the same directory");

        /* A bad config file names the file and the key. */
        pathf(path, sizeof path, "%s/bad.json", root);
        f = fopen(path, "w");
        CHECK(f != NULL, "write bad.json");
        fprintf(f, "{\"sessions\": {\"driver\": \"memory\", \"lifetime\": 0}}\n");
        fclose(f);
        CHECK(session_init(path) == 0, "session_init of a bad config file");
        CHECK_ERROR(SESSION_ERROR_CONFIG, "session_init of a bad config file");
        CHECK(strstr(session_last_error(), "sessions.lifetime") != NULL,
              "the message names sessions.lifetime");
        check_data(id, "{\"kept\":true}", 13, "the previous configuration is kept");
    }
    CHECK(session_destroy(id) != 0, "session_destroy");
    free(id);
}

static void test_small_max(const char *root)
{
    suite = "max_data_size";
    char config[2048];
    make_config(config, sizeof config, root, 3600, 100);
    init_or_die(config);
    test_sizes(100, "small max_data_size");
    suite = "max_data_size";
    char data[102];
    memset(data, 'm', 101);
    data[101] = '\0';
    CHECK(session_create(data) == NULL, "101 bytes refused with max_data_size 100");
    CHECK_ERROR(SESSION_ERROR_TOO_LARGE, "101 bytes refused with max_data_size 100");
    CHECK(strstr(session_last_error(), "max_data_size") != NULL, "the message names max_data_size");
}

static void test_expiry(const char *root)
{
    suite = "expiry";
    char config[2048];
    char session_dir[4096];
    if (root != NULL) {
        /* A storage root must exist: only ROOT/sessions is created by the library. */
        mkdir_p(root);
        pathf(session_dir, sizeof session_dir, "%s/sessions", root);
    }
    make_config(config, sizeof config, root, 1, MIB);
    init_or_die(config);

    char *id = session_create("{\"short\":1}");
    char *updated = session_create("{\"short\":2}");
    CHECK(id != NULL && updated != NULL, "session_create with lifetime 1");
    check_data(id, "{\"short\":1}", 11, "readable before expiry");
    CHECK(session_update(updated, "{\"short\":3}") != 0, "session_update before expiry");
    if (root != NULL)
        CHECK(count_entries(session_dir, 1) == 2, "two session files before expiry");

    sleep(2);

    check_gone(id, "session_get after expiry");
    check_gone(updated, "session_get after expiry (updated session: update keeps the expiry)");
    CHECK(session_update(id, "{\"again\":1}") == 0, "session_update after expiry");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "session_update after expiry");
    check_gone(id, "not resurrected by session_update");

    session_remove_expired();
    CHECK_OK("session_remove_expired");
    check_gone(id, "gone after session_remove_expired");
    CHECK(session_destroy(id) != 0, "session_destroy of an expired, removed session");
    if (root != NULL)
        CHECK(count_entries(session_dir, 1) == 0,
              "session_remove_expired left no session file in the directory");
    free(id);
    free(updated);
}

static void test_directory_tightened(const char *base)
{
    suite = "directory mode";
    char root[1024], dir[4096], config[2048];
    pathf(root, sizeof root, "%s/loose", base);
    pathf(dir, sizeof dir, "%s/sessions", root);
    mkdir_p(dir);
    CHECK(chmod(dir, 0755) == 0, "chmod 0755");
    make_config(config, sizeof config, root, 3600, MIB);
    init_or_die(config);
    char *id = session_create("{}");
    CHECK(id != NULL, "session_create");
    struct stat st;
    CHECK(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0700,
          "a looser existing session directory is tightened to 0700");
    CHECK(session_destroy(id) != 0, "session_destroy");
    free(id);
}

static void run_suite(const char *name, const char *root)
{
    char config[2048];
    char session_dir[4096];
    printf("api_test: %s driver%s%s\n", name, root ? ", root " : "", root ? root : "");
    if (root != NULL) {
        mkdir_p(root);
        pathf(session_dir, sizeof session_dir, "%s/sessions", root);
    }
    make_config(config, sizeof config, root, 3600, MIB);
    init_or_die(config);
    if (root != NULL) {
        struct stat st;
        CHECK(stat(session_dir, &st) == 0 && S_ISDIR(st.st_mode), "init creates the session directory");
        CHECK((st.st_mode & 07777) == 0700, "the session directory is created 0700");
    }

    test_null_arguments();
    test_ids();
    test_hostile_ids(root ? session_dir : NULL, root);
    test_round_trip(root ? session_dir : NULL);
    test_binary_data();
    test_sizes(MIB, name);
    test_config_errors(root, config);
    if (root != NULL)
        CHECK(count_entries(session_dir, 1) == 0, "every session of the suite was destroyed");
    test_small_max(root);

    char expiry_root[4096];
    if (root != NULL)
        pathf(expiry_root, sizeof expiry_root, "%s-expiry", root);
    test_expiry(root ? expiry_root : NULL);
    printf("api_test: %s driver: OK (%d checks so far)\n", name, passed);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: api_test DIR\n");
        return 2;
    }
    const char *base = argv[1];
    if (strlen(base) > 512) {
        fprintf(stderr, "api_test: DIR is too long\n");
        return 2;
    }
    mkdir_p(base);

    suite = "version";
    CHECK(session_version() != NULL, "session_version");
    CHECK(strcmp(session_version(), LIBSESSION_VERSION) == 0, "session_version() == LIBSESSION_VERSION");
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", LIBSESSION_VERSION_MAJOR, LIBSESSION_VERSION_MINOR,
             LIBSESSION_VERSION_PATCH);
    CHECK(strcmp(expect, LIBSESSION_VERSION) == 0, "LIBSESSION_VERSION matches its parts");
    CHECK(session_last_error() == NULL && session_last_error_code() == SESSION_ERROR_OK,
          "no error before any call");

    char root[4096];
    pathf(root, sizeof root, "%s/file-store", base);
    run_suite("file", root);
    test_directory_tightened(base);
    run_suite("memory", NULL);

    session_shutdown();
    printf("api_test: %d passed, 0 failed\n", passed);
    return 0;
}
