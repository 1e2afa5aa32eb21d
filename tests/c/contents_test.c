/*
 * contents_test.c - what libsession does with the contents of sessions (issue 7,
 * items 3-5): encryption at rest ("secret", "secret_fallbacks"), the session cookie
 * (session_cookie_header, session_cookie_clear_header,
 * session_id_from_cookie_header) and the owner index ("owner_key",
 * "max_sessions_per_owner", session_destroy_owner, session_list_owner,
 * session_count_owner), and their session_store_* twins, through
 * include/session.h.
 *
 * Usage: contents_test CONFIG_JSON [SESSIONS_PER_OWNER [SESSIONS_PER_THREAD]]
 *   CONFIG_JSON          config.json text whose default store is the store under
 *                        test (a single "sessions" object, or a map with a
 *                        "default" entry), as for values_test. The test adds
 *                        secret, secret_fallbacks, cookie, lifetime, max_lifetime,
 *                        owner_key and max_sessions_per_owner to its copies itself,
 *                        so CONFIG_JSON must not set them. Every "root" it names is
 *                        created first. Redis stores must use database 0.
 *   SESSIONS_PER_OWNER   sessions of each of the 10 owners of part 3 (default 100:
 *                        1,000 owned sessions).
 *   SESSIONS_PER_THREAD  sessions each thread creates in part 4, a multiple of 4
 *                        (default 60: 2 processes x 4 threads x 60 = 480).
 *   SESSION_TEST_REDIS_PORT (environment, Redis driver only): the port of the
 *                        redis-server on 127.0.0.1 that holds the store; the test
 *                        reads and damages the stored records with redis-cli.
 *
 * What it proves:
 *   1. Encryption. With a secret every call works through the seal; the data (a
 *      marker string) and the owner's name appear nowhere at rest: in no file under
 *      the session directory, in no file name, in no field of the Redis hash and in
 *      no Redis key, while the same scan finds a control session written without a
 *      secret. A flipped byte of the stored record is SESSION_ERROR_CORRUPT (files:
 *      the data area of a fresh file, caught by its checksum; then bytes of the
 *      sealed record with the checksums made right again, caught by AES-GCM alone;
 *      Redis: HSET of field d with one byte flipped), and so is the record under
 *      another id (files: a copy of the file under another id with the same tag,
 *      which only the seal refuses, and under an unrelated id; Redis: COPY and
 *      RENAME); such a session is still destroyed by session_destroy (a server
 *      answers 401 and clears it). Rotation: a handle with secret B and
 *      secret_fallbacks [A] reads a session written with A on the same storage,
 *      re-seals it on update, after which a handle with B alone reads it and one
 *      with A alone gets CORRUPT. A short secret is a config error whose message
 *      does not show the secret. (Memory: the stored bytes are not reachable from
 *      C and a store is not shared between handles; those checks are skipped, and
 *      said so.)
 *   2. Cookies: the id in 40-odd real-world and hostile Cookie: header values, the
 *      exact Set-Cookie values of the default and of custom "cookie" objects
 *      (Max-Age = lifetime), the clearing header, malformed ids, bad cookie
 *      configurations.
 *   3. Owner index: 10 owners x SESSIONS_PER_OWNER sessions and some without an
 *      owner; destroy_owner("3") ends exactly owner 3's, every other session keeps
 *      its exact data; count_owner and list_owner agree; owners follow set_value,
 *      delete_value, update and regenerate; list order; max_sessions_per_owner; NULL
 *      and empty owners; a store without owner_key.
 *   4. Files and Redis: 2 forked processes x 4 threads create sessions of 4 owners
 *      at once; each owner then lists exactly the sessions created for it, and
 *      destroy_owner ends them all.
 *
 * Checks do not stop at the first failure: each failed one is printed, and the
 * program ends with "contents_test: N passed, M failed" and exit status 1 when M is
 * not 0.
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "session.h"

#define TEST_NAME "contents_test"
#include "test_support.h"

/* Secrets of at least 32 bytes, JSON-safe. */
#define SECRET_A "contents_test secret A 0123456789abcdef0123456789"
#define SECRET_B "contents_test secret B fedcba9876543210fedcba9876"
/* Strings that must never appear at rest in an encrypted store. */
#define MARKER "PLAINTEXT-CANARY-4b1d9e6a"
#define OWNER_CANARY "owner-canary-77ac31f0"
/* A string that must appear at rest in a store without a secret (the control). */
#define CONTROL_MARKER "CONTROL-PLAINTEXT-c0ffee42"

#define OWNERS 10
#define PROCESSES 2
#define PROCESS_THREADS 4
#define MP_OWNERS 4

static int per_owner = 100;
static int per_thread = 60;

static char *session_dir;           /* file driver: ROOT/sessions */
static char *key_prefix;            /* Redis driver: the key prefix */
static char redis_port[16];         /* Redis driver: the server's port, for redis-cli */
static char *global_config;         /* the global configuration */

/* ---- helpers ---------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("vsnprintf failed");
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static void sleep_ms(int ms)
{
    sleep_until(now_s() + ms / 1000.0);
}

/* Whether `needle` occurs in the n bytes at `hay` (binary-safe). */
static int contains_bytes(const unsigned char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (hay == NULL || m > n)
        return 0;
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == (unsigned char)needle[0] && memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

/* The whole file at `path` (NUL-terminated beyond *len), NULL when it cannot be
   read. */
static unsigned char *read_all_fd(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    unsigned char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            unsigned char *bigger = realloc(buf, cap + 1);
            if (bigger == NULL)
                die("out of memory");
            buf = bigger;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    unsigned char *buf = read_all_fd(fd, len);
    close(fd);
    return buf;
}

static int write_all_fd(int fd, const unsigned char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, buf + done, len - done, (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 0;
        done += (size_t)w;
    }
    return 1;
}

/* Overwrites the file at `path` with `len` bytes of `buf` (its length), keeping its
   access and modification times: the file driver reads a session's end from its
   mtime, which a plain write would move. */
static int rewrite_file(const char *path, const unsigned char *buf, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int ok = write_all_fd(fd, buf, len);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    ok = ok && futimens(fd, times) == 0;
    return close(fd) == 0 && ok;
}

/* Copies the file `src` to the new file `dst` (0600), with the same times. */
static int copy_file(const char *src, const char *dst)
{
    struct stat st;
    size_t len = 0;
    unsigned char *buf = read_all(src, &len);
    if (buf == NULL || stat(src, &st) != 0) {
        free(buf);
        return 0;
    }
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write_all_fd(fd, buf, len);
    if (fd >= 0) {
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        ok = ok && futimens(fd, times) == 0;
        ok = close(fd) == 0 && ok;
    }
    free(buf);
    return ok;
}

/* The string value of the first `"key": "..."` in `config` (no escapes), or NULL. */
static char *config_string(const char *config, const char *key)
{
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    for (const char *p = strstr(config, quoted); p != NULL; p = strstr(p + 1, quoted)) {
        const char *v = after_colon(p + strlen(quoted));
        if (v == NULL || *v != '"')
            continue;
        const char *end = strchr(v + 1, '"');
        if (end == NULL)
            return NULL;
        char *out = xmalloc((size_t)(end - v));
        memcpy(out, v + 1, (size_t)(end - v - 1));
        out[end - v - 1] = '\0';
        return out;
    }
    return NULL;
}

/* A fresh id that is not stored anywhere. */
static char *fresh_id(void)
{
    char *id = session_create_id();
    if (!is_session_id(id))
        die("session_create_id failed");
    return id;
}

/* ---- the file driver's on-disk format (src/store/file/format.rs) ---------------- */

#define DESC_LEN 72
#define HEADER_LEN 144

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const unsigned char *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Where the live record of a session file is: its descriptor and its data. */
typedef struct {
    size_t desc; /* offset of the descriptor */
    size_t off;  /* offset of the data */
    size_t len;  /* length of the data */
} located_t;

/* Finds the newest valid descriptor (magic LSS2, right checksum) and its data.
   Returns 0 when there is none, or its data is outside the file. */
static int locate_record(const unsigned char *f, size_t n, located_t *at)
{
    int found = 0;
    uint64_t best = 0;
    for (size_t slot = 0; slot < 2; slot++) {
        const unsigned char *d = f + slot * DESC_LEN;
        if ((slot + 1) * DESC_LEN > n || memcmp(d, "LSS2", 4) != 0 ||
            get_le32(d + 68) != crc32_of(d, 68))
            continue;
        uint64_t seq = get_le64(d + 8);
        if (!found || seq > best) {
            found = 1;
            best = seq;
            at->desc = slot * DESC_LEN;
            at->off = (size_t)get_le64(d + 40);
            at->len = get_le32(d + 4);
        }
    }
    return found && at->off >= HEADER_LEN && at->off + at->len <= n;
}

/* Makes the checksums of the descriptor `at` right for its (changed) data. */
static void fix_checksums(unsigned char *f, const located_t *at)
{
    unsigned char *d = f + at->desc;
    put_le32(d + 60, crc32_of(f + at->off, at->len));
    put_le32(d + 68, crc32_of(d, 68));
}

static char *session_file(const char *id)
{
    return xprintf("%s/%s", session_dir, id);
}

/* ---- redis-cli ------------------------------------------------------------------- */

/* Runs `redis-cli -h 127.0.0.1 -p PORT ARGS...` (a NULL-terminated list), its
   standard input the file `input` (NULL: /dev/null). Returns its standard output
   (raw: redis-cli writes replies verbatim when it is not a terminal), or NULL when
   it did not exit with status 0. Main thread only, no other thread running. */
static unsigned char *redis_cli(const char *input, size_t *len, ...)
{
    const char *argv[32];
    int argc = 0;
    argv[argc++] = "redis-cli";
    argv[argc++] = "-h";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "-p";
    argv[argc++] = redis_port;
    va_list ap;
    va_start(ap, len);
    for (const char *arg = va_arg(ap, const char *); arg != NULL; arg = va_arg(ap, const char *)) {
        if (argc >= 31)
            die("too many redis-cli arguments");
        argv[argc++] = arg;
    }
    va_end(ap);
    argv[argc] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe failed: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed: %s", strerror(errno));
    if (pid == 0) {
        int in = open(input ? input : "/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(fds[1], 1) < 0)
            _exit(126);
        close(fds[0]);
        close(fds[1]);
        execvp("redis-cli", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    unsigned char *out = read_all_fd(fds[0], &n);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out == NULL || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, TEST_NAME ": redis-cli %s ... failed (status 0x%x)\n", argv[5], status);
        free(out);
        return NULL;
    }
    if (len != NULL)
        *len = n;
    return out;
}

static char *redis_key(const char *id)
{
    return xprintf("%s%s", key_prefix, id);
}

/* The raw bytes of field d of session `id`'s hash (without redis-cli's newline);
   NULL when there is none. */
static unsigned char *redis_record(const char *id, size_t *len)
{
    char *key = redis_key(id);
    size_t n = 0;
    unsigned char *out = redis_cli(NULL, &n, "HGET", key, "d", (const char *)NULL);
    free(key);
    if (out == NULL || n < 2 || out[n - 1] != '\n') {
        free(out);
        return NULL;
    }
    *len = n - 1;
    out[n - 1] = '\0';
    return out;
}

/* Stores `len` bytes as field d of session `id`'s hash: HSET with the value read
   from a file by redis-cli -x (binary-safe). */
static int redis_set_record(const char *id, const unsigned char *rec, size_t len)
{
    const char *path = "contents_test-record.bin";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        die("cannot create %s: %s", path, strerror(errno));
    int ok = write_all_fd(fd, rec, len);
    ok = close(fd) == 0 && ok;
    char *key = redis_key(id);
    unsigned char *out = ok ? redis_cli(path, NULL, "-x", "HSET", key, "d", (const char *)NULL)
                            : NULL;
    /* HSET of an existing field answers 0 (no field added). */
    ok = out != NULL && strcmp((const char *)out, "0\n") == 0;
    free(out);
    free(key);
    unlink(path);
    return ok;
}

/* ---- a minimal reader of session_list_owner's JSON array of ids ---------------- */

#define MAX_LISTED 4096

typedef struct {
    long n;
    char (*ids)[SESSION_ID_LEN + 1];
} id_list_t;

/* Parses `["id", ...]` (white space allowed) into `out`; returns the number of ids,
   -1 when `json` is not a JSON array of 64-lowercase-hex strings. */
static long parse_id_list(const char *json, id_list_t *out)
{
    out->n = 0;
    if (out->ids == NULL)
        out->ids = xmalloc(sizeof *out->ids * MAX_LISTED);
    if (json == NULL)
        return -1;
    const char *p = skip_ws(json);
    if (*p++ != '[')
        return -1;
    p = skip_ws(p);
    if (*p == ']')
        return *skip_ws(p + 1) == '\0' ? 0 : -1;
    for (;;) {
        if (*p != '"' || out->n >= MAX_LISTED)
            return -1;
        const char *end = strchr(p + 1, '"');
        if (end == NULL || end - (p + 1) != SESSION_ID_LEN)
            return -1;
        memcpy(out->ids[out->n], p + 1, SESSION_ID_LEN);
        out->ids[out->n][SESSION_ID_LEN] = '\0';
        if (!is_session_id(out->ids[out->n]))
            return -1;
        out->n++;
        p = skip_ws(end + 1);
        if (*p == ',') {
            p = skip_ws(p + 1);
            continue;
        }
        if (*p == ']')
            return *skip_ws(p + 1) == '\0' ? out->n : -1;
        return -1;
    }
}

static int listed(const id_list_t *list, const char *id)
{
    for (long i = 0; i < list->n; i++)
        if (id != NULL && strcmp(list->ids[i], id) == 0)
            return 1;
    return 0;
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The list holds exactly the n ids `want` (any order), each once. */
static int same_ids(const id_list_t *list, char **want, long n)
{
    if (list->n != n)
        return 0;
    char (*a)[SESSION_ID_LEN + 1] = xmalloc(sizeof *a * (size_t)(n + 1));
    char (*b)[SESSION_ID_LEN + 1] = xmalloc(sizeof *b * (size_t)(n + 1));
    int ok = 1;
    for (long i = 0; i < n; i++) {
        if (want[i] == NULL || strlen(want[i]) != SESSION_ID_LEN) {
            ok = 0;
            break;
        }
        memcpy(a[i], list->ids[i], SESSION_ID_LEN + 1);
        memcpy(b[i], want[i], SESSION_ID_LEN + 1);
    }
    if (ok) {
        qsort(a, (size_t)n, sizeof *a, cmp_ids);
        qsort(b, (size_t)n, sizeof *b, cmp_ids);
        for (long i = 0; i < n && ok; i++)
            ok = strcmp(a[i], b[i]) == 0 && (i == 0 || strcmp(a[i - 1], a[i]) != 0);
    }
    free(a);
    free(b);
    return ok;
}

/* session_store_list_owner(h, owner) (h NULL: session_list_owner) parsed into
   `list`; -1 when the call failed or its result is not an array of ids. */
static long list_owner(session_store_t *h, const char *owner, id_list_t *list)
{
    char *json = h ? session_store_list_owner(h, owner) : session_list_owner(owner);
    long n = parse_id_list(json, list);
    if (n < 0)
        fprintf(stderr, TEST_NAME ": list_owner(\"%s\") gave %.300s\n", owner,
                json ? json : "NULL");
    free(json);
    return n;
}

/* get through handle `h` returns exactly `want`. */
#define CHECK_GET(h, id, want, what)                                                               \
    do {                                                                                           \
        char *got_ = session_store_get((h), (id));                                                 \
        CHECK_STR(got_, (want), what);                                                             \
        free(got_);                                                                                \
    } while (0)

/* get through handle `h` returns NULL with `code`. */
#define CHECK_GET_FAILS(h, id, code, what)                                                         \
    do {                                                                                           \
        char *got_ = session_store_get((h), (id));                                                 \
        CHECK_STR(got_, NULL, what);                                                               \
        CHECK_ERROR(code, what);                                                                   \
        free(got_);                                                                                \
    } while (0)

/* ---- 1. encryption ------------------------------------------------------------- */

static const char *sealed_data =
    "{\"user_id\":\"" OWNER_CANARY "\",\"note\":\"" MARKER "\",\"n\":1}";

/* Every call works through the seal. Returns the id of a session of OWNER_CANARY
   that went through create, set_value, pop_value, update_if and regenerate. */
static char *test_sealed_calls(session_store_t *ha)
{
    suite = "every call through the seal";
    char *id = session_store_create(ha, sealed_data);
    CHECK(is_session_id(id), "create with a secret");
    if (id == NULL)
        return NULL;
    CHECK_GET(ha, id, sealed_data, "get with a secret returns the data");
    CHECK_OK("get with a secret");
    char *got = session_store_get_value(ha, id, "note");
    CHECK_STR(got, "\"" MARKER "\"", "get_value with a secret");
    free(got);
    CHECK(session_store_set_value(ha, id, "flash", "\"" MARKER "-flash\""),
          "set_value with a secret");
    CHECK_GET(ha, id,
              "{\"user_id\":\"" OWNER_CANARY "\",\"note\":\"" MARKER "\",\"n\":1,\"flash\":\"" MARKER
              "-flash\"}",
              "set_value with a secret appended the member");
    got = session_store_pop_value(ha, id, "flash");
    CHECK_STR(got, "\"" MARKER "-flash\"", "pop_value with a secret");
    free(got);
    unsigned long long v = 0;
    got = session_store_get_versioned(ha, id, &v);
    CHECK_STR(got, sealed_data, "get_versioned with a secret");
    free(got);
    const char *data2 = "{\"user_id\":\"" OWNER_CANARY "\",\"note\":\"" MARKER "\",\"n\":2}";
    CHECK(session_store_update_if(ha, id, "{}", v + 1) == 0, "update_if with a wrong version");
    CHECK_ERROR(SESSION_ERROR_CONFLICT, "update_if with a wrong version and a secret");
    CHECK(session_store_update_if(ha, id, data2, v), "update_if with a secret");
    char *nid = session_store_regenerate(ha, id);
    CHECK(is_session_id(nid), "regenerate with a secret");
    if (nid != NULL) {
        CHECK_GET(ha, nid, data2, "the regenerated session reads under its new id");
        CHECK_GET_FAILS(ha, id, SESSION_ERROR_NOT_FOUND, "the old id is gone");
        id_list_t list = {0, NULL};
        CHECK(list_owner(ha, OWNER_CANARY, &list) == 1 && listed(&list, nid),
              "the owner index of an encrypted store lists the regenerated id alone");
        free(list.ids);
        CHECK(session_store_count_owner(ha, OWNER_CANARY) == 1, "count_owner with a secret");
    }
    char *ttl_id = session_store_create_ttl(ha, "{\"t\":\"" MARKER "\"}", 60);
    CHECK(is_session_id(ttl_id), "create_ttl with a secret");
    CHECK_GET(ha, ttl_id, "{\"t\":\"" MARKER "\"}", "create_ttl with a secret reads");
    CHECK(ttl_id == NULL || session_store_destroy(ha, ttl_id), "destroy");
    free(ttl_id);
    free(id);
    return nid;
}

typedef struct {
    const char *needles[3];
    long in_content[3];
    long in_names[3];
    long files, errors;
    const char *want_name; /* a session file (in the session directory) that must be met */
    long want_size;        /* its size, -1 until met */
} scan_t;

static void scan_dir(const char *path, scan_t *s)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        s->errors++;
        return;
    }
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = xprintf("%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0) {
            /* A file may go while the scan runs (nothing else runs here, though). */
            free(p);
            continue;
        }
        for (int i = 0; i < 3 && s->needles[i]; i++)
            if (strstr(e->d_name, s->needles[i]) != NULL)
                s->in_names[i]++;
        if (S_ISDIR(st.st_mode)) {
            scan_dir(p, s);
        } else if (S_ISREG(st.st_mode)) {
            size_t n = 0;
            unsigned char *buf = read_all(p, &n);
            if (buf == NULL) {
                s->errors++;
            } else {
                s->files++;
                for (int i = 0; i < 3 && s->needles[i]; i++)
                    s->in_content[i] += contains_bytes(buf, n, s->needles[i]);
                /* Not an owner index entry (owners/TAG/ID, empty): the session file. */
                if (s->want_name && strcmp(e->d_name, s->want_name) == 0 &&
                    strcmp(path, session_dir) == 0)
                    s->want_size = (long)n;
            }
            free(buf);
        }
        free(p);
    }
    closedir(d);
}

/* The plaintext appears nowhere at rest; a control written without a secret
   does, so the scan can see it. */
static void test_at_rest(session_store_t *ha, const char *sealed_id)
{
    suite = "nothing in the clear at rest";
    if (driver == DRIVER_MEMORY) {
        /* The memory driver keeps the sealed records in the process's heap; no C
           call returns the stored bytes (tests/conformance.rs checks them there). */
        printf(TEST_NAME ": at-rest check skipped: the memory driver's stored bytes are not "
                         "reachable from C\n");
        return;
    }
    if (sealed_id == NULL)
        return;
    /* A second encrypted session, written by create only. */
    char *fresh = session_store_create(ha, sealed_data);
    CHECK(is_session_id(fresh), "create with a secret");
    /* The control, through a handle without a secret on the same storage. */
    session_store_t *plain = session_store_open_json(base_config, NULL);
    CHECK(plain != NULL, "open a handle without a secret on the same storage");
    char *control = plain ? session_store_create(plain, "{\"note\":\"" CONTROL_MARKER "\"}") : NULL;
    CHECK(is_session_id(control), "create the control without a secret");

    if (driver == DRIVER_FILE) {
        scan_t s;
        memset(&s, 0, sizeof s);
        s.needles[0] = MARKER;
        s.needles[1] = OWNER_CANARY;
        s.needles[2] = CONTROL_MARKER;
        s.want_name = sealed_id;
        s.want_size = -1;
        scan_dir(session_dir, &s);
        char what[256];
        snprintf(what, sizeof what,
                 "scanned %ld files under %s: marker in %ld, owner in %ld contents / %ld names, "
                 "control in %ld",
                 s.files, session_dir, s.in_content[0], s.in_content[1], s.in_names[1],
                 s.in_content[2]);
        printf(TEST_NAME ": at rest: %s\n", what);
        CHECK(s.errors == 0, "every file under the session directory was read");
        if (s.want_size < (long)(HEADER_LEN + strlen(sealed_data) + 33))
            fprintf(stderr, TEST_NAME ": the encrypted session's file %s: size %ld\n", sealed_id,
                    s.want_size);
        CHECK(s.want_size >= (long)(HEADER_LEN + strlen(sealed_data) + 33),
              "the scan read the encrypted session's file, sealed (28 + 5 bytes added)");
        CHECK(s.in_content[2] == 1, "the scan finds the control's plaintext in its one file");
        CHECK(s.in_content[0] == 0, "the marker of the encrypted data is in no file");
        CHECK(s.in_content[1] == 0, "the owner's name is in no file");
        CHECK(s.in_names[0] == 0 && s.in_names[1] == 0, "no file name shows the data or owner");
        CHECK(s.files >= 4, "the scan met the session files and the owner index");
    } else {
        char *key = redis_key(sealed_id);
        size_t n = 0;
        unsigned char *all = redis_cli(NULL, &n, "HGETALL", key, (const char *)NULL);
        CHECK(all != NULL && n > strlen(sealed_data) + 33,
              "HGETALL of the encrypted session's hash");
        CHECK(all != NULL && !contains_bytes(all, n, MARKER),
              "the marker of the encrypted data is in no field of its hash");
        CHECK(all != NULL && !contains_bytes(all, n, OWNER_CANARY),
              "the owner's name is in no field of its hash");
        free(all);
        free(key);
        size_t len = 0;
        unsigned char *rec = fresh ? redis_record(fresh, &len) : NULL;
        CHECK(rec != NULL && len == strlen(sealed_data) + 33 && rec[0] == 0xA1,
              "field d of a fresh encrypted session is a sealed record (data + 33 bytes)");
        CHECK(rec != NULL && !contains_bytes(rec, len, MARKER) &&
                  !contains_bytes(rec, len, OWNER_CANARY),
              "field d of a fresh encrypted session holds no plaintext");
        free(rec);
        key = control ? redis_key(control) : NULL;
        all = key ? redis_cli(NULL, &n, "HGETALL", key, (const char *)NULL) : NULL;
        CHECK(all != NULL && contains_bytes(all, n, CONTROL_MARKER),
              "HGETALL finds the control's plaintext");
        free(all);
        free(key);
        unsigned char *keys = redis_cli(NULL, &n, "--scan", (const char *)NULL);
        CHECK(keys != NULL && n > 0, "redis-cli --scan lists the keys");
        CHECK(keys != NULL && !contains_bytes(keys, n, OWNER_CANARY) &&
                  !contains_bytes(keys, n, MARKER),
              "no Redis key shows the owner or the data");
        CHECK(keys != NULL && contains_bytes(keys, n, ":owner:"),
              "the owner index has keys (under hashed names)");
        printf(TEST_NAME ": at rest: Redis hash fields and %zu bytes of key names checked\n", n);
        free(keys);
    }
    if (control != NULL)
        CHECK(session_store_destroy(plain, control), "destroy the control");
    if (fresh != NULL)
        CHECK(session_store_destroy(ha, fresh), "destroy");
    session_store_close(plain);
    free(control);
    free(fresh);
}

/* Files: the data area of a fresh file with one byte flipped, and the sealed record
   changed with the checksums made right again. */
static void test_damaged_file(session_store_t *ha)
{
    suite = "a flipped byte on disk";
    char *id = session_store_create(ha, "{\"user_id\":\"flip-owner\",\"note\":\"" MARKER "\"}");
    CHECK(is_session_id(id), "create with a secret");
    if (id == NULL)
        return;
    char *path = session_file(id);
    size_t n = 0;
    unsigned char *orig = read_all(path, &n);
    located_t at = {0, 0, 0};
    int found = orig != NULL && locate_record(orig, n, &at);
    CHECK(found, "the fresh session file has a valid descriptor naming its data");
    if (!found) {
        free(orig);
        free(path);
        free(id);
        return;
    }
    CHECK(at.len == strlen("{\"user_id\":\"flip-owner\",\"note\":\"" MARKER "\"}") + 33 &&
              orig[at.off] == 0xA1,
          "the data area holds the sealed record");
    unsigned char *bad = xmalloc(n);

    /* One flipped byte of the data area of a file written once: no older version
       to fall back to, so the checksum makes it CORRUPT. */
    memcpy(bad, orig, n);
    bad[at.off + at.len / 2] ^= 0x01;
    CHECK(rewrite_file(path, bad, n), "flip one byte of the data area");
    CHECK_GET_FAILS(ha, id, SESSION_ERROR_CORRUPT, "get of a file whose data lost its checksum");
    CHECK(rewrite_file(path, orig, n), "put the byte back");
    CHECK_GET(ha, id, "{\"user_id\":\"flip-owner\",\"note\":\"" MARKER "\"}",
              "the repaired file reads again");

    /* A server answers CORRUPT with 401 and may destroy the session: that works on a
       damaged file as on any other. */
    char *doomed = session_store_create(ha, "{\"user_id\":\"flip-owner\",\"doomed\":1}");
    CHECK(is_session_id(doomed), "create with a secret");
    if (doomed != NULL) {
        char *dpath = session_file(doomed);
        size_t dn = 0;
        unsigned char *dbuf = read_all(dpath, &dn);
        located_t dat = {0, 0, 0};
        CHECK(dbuf != NULL && locate_record(dbuf, dn, &dat), "read the new session file");
        if (dbuf != NULL && dat.len > 0) {
            dbuf[dat.off + dat.len / 2] ^= 0x01;
            CHECK(rewrite_file(dpath, dbuf, dn), "flip one byte of its data area");
        }
        CHECK_GET_FAILS(ha, doomed, SESSION_ERROR_CORRUPT, "get of the damaged file");
        CHECK(session_store_destroy(ha, doomed), "destroy of a damaged session file succeeds");
        CHECK_OK("destroy of a damaged session file");
        CHECK(access(dpath, F_OK) != 0, "destroy removed the damaged file");
        CHECK_GET_FAILS(ha, doomed, SESSION_ERROR_NOT_FOUND, "the destroyed session is gone");
        free(dbuf);
        free(dpath);
    }
    free(doomed);

    /* The same, with the checksums made right: only AES-GCM can tell. Every part
       of the record: format byte, key id, nonce, ciphertext, tag. */
    size_t positions[] = {0, 3, 10, at.len / 2, at.len - 1};
    int all_corrupt = 1, none_written = 1;
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        memcpy(bad, orig, n);
        bad[at.off + positions[i]] ^= 0x20;
        fix_checksums(bad, &at);
        if (!rewrite_file(path, bad, n))
            die("cannot write %s", path);
        char *got = session_store_get(ha, id);
        int code = session_last_error_code();
        if (got != NULL || code != SESSION_ERROR_CORRUPT) {
            all_corrupt = 0;
            fprintf(stderr, TEST_NAME ": byte %zu of the record flipped: get gave %s, code %d\n",
                    positions[i], got ? got : "NULL", code);
        }
        free(got);
        int set = session_store_set_value(ha, id, "k", "1");
        code = session_last_error_code();
        if (set || code != SESSION_ERROR_CORRUPT) {
            all_corrupt = 0;
            fprintf(stderr, TEST_NAME ": byte %zu flipped: set_value gave %d, code %d\n",
                    positions[i], set, code);
        }
        size_t n2 = 0;
        unsigned char *after = read_all(path, &n2);
        if (after == NULL || n2 != n || memcmp(after, bad, n) != 0)
            none_written = 0;
        free(after);
    }
    CHECK(all_corrupt, "each flipped byte of the sealed record (checksums right): get and "
                       "set_value fail with CORRUPT");
    CHECK(none_written, "a set_value on a record that does not open writes nothing");
    char *regenerated = session_store_regenerate(ha, id);
    CHECK(regenerated == NULL, "regenerate of a record that does not open");
    CHECK_ERROR(SESSION_ERROR_CORRUPT, "regenerate of a record that does not open");
    free(regenerated);
    CHECK(rewrite_file(path, orig, n), "restore the file");
    CHECK_GET(ha, id, "{\"user_id\":\"flip-owner\",\"note\":\"" MARKER "\"}",
              "the restored file reads again");

    /* The control: the same change in a file of a store without a secret is read
       as data, which proves the checksums above were made right. */
    session_store_t *plain = session_store_open_json(base_config, NULL);
    char *pid = plain ? session_store_create(plain, "{\"v\":\"abcdef\"}") : NULL;
    CHECK(is_session_id(pid), "create in a store without a secret");
    if (pid != NULL) {
        char *ppath = session_file(pid);
        size_t pn = 0;
        unsigned char *pbuf = read_all(ppath, &pn);
        located_t pat = {0, 0, 0};
        if (pbuf != NULL && locate_record(pbuf, pn, &pat) && pat.len == 14) {
            pbuf[pat.off + 11] ^= 0x01; /* 'f' -> 'g' */
            fix_checksums(pbuf, &pat);
            CHECK(rewrite_file(ppath, pbuf, pn), "change a byte of a plain file");
            CHECK_GET(plain, pid, "{\"v\":\"abcdeg\"}",
                      "control: without a secret, a change with right checksums is read");
        } else {
            CHECK(0, "the plain session file has a valid descriptor naming its 14 bytes");
        }
        free(pbuf);
        free(ppath);
        CHECK(session_store_destroy(plain, pid), "destroy");
    }
    free(pid);
    session_store_close(plain);
    CHECK(session_store_destroy(ha, id), "destroy");
    free(bad);
    free(orig);
    free(path);
    free(id);
}

/* Redis: field d rewritten with one byte flipped. */
static void test_damaged_redis(session_store_t *ha)
{
    suite = "a flipped byte in Redis";
    const char *data = "{\"user_id\":\"flip-owner\",\"note\":\"" MARKER "\"}";
    char *id = session_store_create(ha, data);
    CHECK(is_session_id(id), "create with a secret");
    if (id == NULL)
        return;
    size_t len = 0;
    unsigned char *orig = redis_record(id, &len);
    CHECK(orig != NULL && len == strlen(data) + 33 && orig[0] == 0xA1,
          "HGET d gives the sealed record");
    if (orig == NULL || len < 33) {
        free(orig);
        free(id);
        return;
    }
    size_t positions[] = {0, 3, 10, len / 2, len - 1};
    int all_corrupt = 1, stored = 1;
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        unsigned char *bad = xmalloc(len);
        memcpy(bad, orig, len);
        bad[positions[i]] ^= 0x01;
        size_t back_len = 0;
        unsigned char *back = NULL;
        if (!redis_set_record(id, bad, len) || (back = redis_record(id, &back_len)) == NULL ||
            back_len != len || memcmp(back, bad, len) != 0)
            stored = 0;
        free(back);
        char *got = session_store_get(ha, id);
        int code = session_last_error_code();
        if (got != NULL || code != SESSION_ERROR_CORRUPT) {
            all_corrupt = 0;
            fprintf(stderr, TEST_NAME ": byte %zu flipped: get gave %s, code %d\n", positions[i],
                    got ? got : "NULL", code);
        }
        free(got);
        int set = session_store_set_value(ha, id, "k", "1");
        code = session_last_error_code();
        if (set || code != SESSION_ERROR_CORRUPT) {
            all_corrupt = 0;
            fprintf(stderr, TEST_NAME ": byte %zu flipped: set_value gave %d, code %d\n",
                    positions[i], set, code);
        }
        free(bad);
    }
    CHECK(stored, "HSET via redis-cli -x stored each damaged record byte for byte");
    CHECK(all_corrupt, "each flipped byte of field d: get and set_value fail with CORRUPT");
    CHECK(redis_set_record(id, orig, len), "restore field d");
    CHECK_GET(ha, id, data, "the restored record reads again");
    /* A server answers CORRUPT with 401 and may destroy the session. */
    orig[len / 2] ^= 0x01;
    CHECK(redis_set_record(id, orig, len), "damage field d again");
    CHECK_GET_FAILS(ha, id, SESSION_ERROR_CORRUPT, "get of the damaged record");
    CHECK(session_store_destroy(ha, id), "destroy of a damaged record succeeds");
    CHECK_OK("destroy of a damaged record");
    CHECK(session_store_exists(ha, id) == 0, "the damaged record is gone");
    free(orig);
    free(id);
}

/* The record of one id under another id. */
static void test_moved_record(session_store_t *ha)
{
    suite = "a record under another id";
    if (driver == DRIVER_MEMORY) {
        printf(TEST_NAME ": damaged and moved records skipped: the memory driver's stored "
                         "bytes are not reachable from C\n");
        return;
    }
    const char *data = "{\"user_id\":\"mover\",\"note\":\"" MARKER "\"}";
    char *id = session_store_create(ha, data);
    CHECK(is_session_id(id), "create with a secret");
    if (id == NULL)
        return;
    /* Another well-formed id with the same first 16 hex digits: the file driver tags
       each file with them, so the copy passes that check and only the seal (the id
       is its associated data) can refuse it. */
    char *other = fresh_id();
    memcpy(other, id, 16);
    if (strcmp(other, id) == 0)
        die("fresh id equals the session's");
    char *third = fresh_id();
    if (driver == DRIVER_FILE) {
        char *src = session_file(id);
        char *dst = session_file(other);
        CHECK(copy_file(src, dst), "copy the session file under another id (same tag)");
        CHECK_GET_FAILS(ha, other, SESSION_ERROR_CORRUPT, "get of the copy under another id");
        CHECK(session_store_set_value(ha, other, "k", "1") == 0, "set_value of the copy");
        CHECK_ERROR(SESSION_ERROR_CORRUPT, "set_value of the copy under another id");
        CHECK_GET(ha, id, data, "the original still reads");
        /* Under an id with another tag the file driver itself refuses the file:
           another session's data under this name. */
        char *dst3 = session_file(third);
        CHECK(copy_file(src, dst3), "copy the session file under an unrelated id");
        CHECK_GET_FAILS(ha, third, SESSION_ERROR_CORRUPT, "get of the copy under an unrelated id");
        CHECK_GET(ha, id, data, "the original still reads");
        CHECK(session_store_destroy(ha, other), "destroy the copy under another id");
        CHECK(access(dst, F_OK) != 0, "destroy removed the copy");
        CHECK(session_store_destroy(ha, third), "destroy the copy under an unrelated id");
        CHECK(access(dst3, F_OK) != 0, "destroy removed the copy under an unrelated id");
        CHECK_GET(ha, id, data, "destroying the copies left the original");
        free(dst3);
        free(dst);
        free(src);
    } else {
        char *key = redis_key(id);
        char *key2 = redis_key(other);
        unsigned char *out = redis_cli(NULL, NULL, "COPY", key, key2, (const char *)NULL);
        CHECK(out != NULL && strcmp((const char *)out, "1\n") == 0, "COPY the hash to another id");
        free(out);
        CHECK_GET_FAILS(ha, other, SESSION_ERROR_CORRUPT, "get of the COPY under another id");
        CHECK(session_store_set_value(ha, other, "k", "1") == 0, "set_value of the copy");
        CHECK_ERROR(SESSION_ERROR_CORRUPT, "set_value of the COPY under another id");
        CHECK_GET(ha, id, data, "the original still reads");
        char *key3 = redis_key(third);
        out = redis_cli(NULL, NULL, "RENAME", key, key3, (const char *)NULL);
        CHECK(out != NULL && strcmp((const char *)out, "OK\n") == 0, "RENAME the hash");
        free(out);
        CHECK_GET_FAILS(ha, third, SESSION_ERROR_CORRUPT, "get of the RENAMEd record");
        CHECK_GET_FAILS(ha, id, SESSION_ERROR_NOT_FOUND, "the renamed-away id is gone");
        CHECK(session_store_destroy(ha, other), "destroy the COPY");
        CHECK(session_store_destroy(ha, third), "destroy the RENAMEd record");
        out = redis_cli(NULL, NULL, "EXISTS", key2, key3, (const char *)NULL);
        CHECK(out != NULL && strcmp((const char *)out, "0\n") == 0,
              "destroy removed both keys");
        free(out);
        free(key3);
        free(key2);
        free(key);
    }
    CHECK(session_store_destroy(ha, id), "destroy");
    free(third);
    free(other);
    free(id);
}

/* Secret A, then B with A as a fallback, then B alone, on one storage. */
static void test_rotation(session_store_t *ha)
{
    suite = "secret rotation";
    if (driver == DRIVER_MEMORY) {
        printf(TEST_NAME ": rotation skipped: each memory store belongs to its handle, so no "
                         "two handles share one storage\n");
        return;
    }
    char *cfg_ab = config_with("\"secret\": \"" SECRET_B "\", \"secret_fallbacks\": [\"" SECRET_A
                               "\"], \"owner_key\": \"user_id\"");
    char *cfg_b = config_with("\"secret\": \"" SECRET_B "\", \"owner_key\": \"user_id\"");
    const char *v1 = "{\"user_id\":\"rot-owner\",\"v\":1}";
    const char *v2 = "{\"user_id\":\"rot-owner\",\"v\":2}";
    char *id = session_store_create(ha, v1);
    CHECK(is_session_id(id), "create with secret A");
    session_store_t *hab = session_store_open_json(cfg_ab, NULL);
    CHECK(hab != NULL, "open the same storage with secret B and secret_fallbacks [A]");
    session_store_t *hb = session_store_open_json(cfg_b, NULL);
    CHECK(hb != NULL, "open the same storage with secret B alone");
    if (id != NULL && hab != NULL && hb != NULL) {
        CHECK_GET(hab, id, v1, "the rotated handle reads a session sealed with A");
        CHECK_OK("get through the fallback secret");
        CHECK_GET_FAILS(hb, id, SESSION_ERROR_CORRUPT, "B alone cannot read it before an update");
        CHECK(session_store_count_owner(hab, "rot-owner") == 1,
              "the rotated handle finds the owner's entry written under A");
        CHECK(session_store_update(hab, id, v2), "update through the rotated handle");
        CHECK_GET(hab, id, v2, "the rotated handle reads its update");
        CHECK_GET(hb, id, v2, "after the update a handle with B alone reads it");
        session_store_t *hb2 = session_store_open_json(cfg_b, NULL);
        CHECK(hb2 != NULL, "a third handle with B alone");
        if (hb2 != NULL) {
            CHECK_GET(hb2, id, v2, "a handle opened after the update with B alone reads it");
            session_store_close(hb2);
        }
        CHECK_GET_FAILS(ha, id, SESSION_ERROR_CORRUPT, "the handle with A alone gets CORRUPT");
        CHECK(session_store_set_value(ha, id, "x", "1") == 0, "set_value with A alone");
        CHECK_ERROR(SESSION_ERROR_CORRUPT, "set_value with A alone");
        CHECK_GET(hb, id, v2, "the refused set_value left the data");
        CHECK(session_store_count_owner(hb, "rot-owner") == 1,
              "B alone finds the owner's entry written by the rotated update");
        CHECK(session_store_count_owner(hab, "rot-owner") == 1,
              "the rotated handle counts the session once (entries under A and B)");
        CHECK(session_store_count_owner(ha, "rot-owner") == 0,
              "A alone passes over the session it cannot open");
        /* New sessions of the rotated handle are sealed with B. */
        char *nid = session_store_create(hab, "{\"new\":true}");
        CHECK(is_session_id(nid), "create through the rotated handle");
        CHECK_GET(hb, nid, "{\"new\":true}", "B alone reads what the rotated handle created");
        CHECK_GET_FAILS(ha, nid, SESSION_ERROR_CORRUPT, "A alone cannot");
        CHECK(nid == NULL || session_store_destroy(hb, nid), "destroy");
        free(nid);
        CHECK(session_store_destroy_owner(hab, "rot-owner") == 1,
              "destroy_owner through the rotated handle ends the one session");
        CHECK_GET_FAILS(hb, id, SESSION_ERROR_NOT_FOUND, "gone");
    }
    printf(TEST_NAME ": rotation: A -> B with fallback A -> B alone checked\n");
    session_store_close(hb);
    session_store_close(hab);
    free(cfg_b);
    free(cfg_ab);
    free(id);
}

static void check_bad_secret(const char *extra, const char *secret, const char *what)
{
    char *cfg = config_with(extra);
    session_store_t *h = session_store_open_json(cfg, NULL);
    CHECK(h == NULL, what);
    CHECK_ERROR(SESSION_ERROR_CONFIG, what);
    const char *msg = session_last_error();
    char shown[160];
    snprintf(shown, sizeof shown, "%s: the message does not show the secret", what);
    CHECK(msg == NULL || secret == NULL || strstr(msg, secret) == NULL, shown);
    session_store_close(h);
    free(cfg);
}

static void test_bad_secrets(void)
{
    suite = "bad secrets";
    /* 31 bytes: one short. */
    check_bad_secret("\"secret\": \"0123456789abcdef0123456789abcde\"",
                     "0123456789abcdef0123456789abcde", "a secret of 31 bytes");
    CHECK_MESSAGE("32", "the message says how long a secret must be");
    check_bad_secret("\"secret\": \"hunter2\"", "hunter2", "a secret of 7 bytes");
    check_bad_secret("\"secret\": \"" SECRET_A "\", \"secret_fallbacks\": [\"oldpass99\"]",
                     "oldpass99", "a short secret among secret_fallbacks");
    check_bad_secret("\"secret_fallbacks\": [\"" SECRET_A "\"]", SECRET_A,
                     "secret_fallbacks without secret");
    check_bad_secret("\"secret\": \"" SECRET_A "\", \"secret_fallbacks\": [\"" SECRET_A "\"]",
                     SECRET_A, "a secret repeated in secret_fallbacks");
    check_bad_secret("\"secret\": 12345678901234567890123456789012345", "1234567890123",
                     "a secret that is not a string");
    /* The same through session_init_json: refused, the previous configuration
       stays. */
    char *cfg = config_with("\"secret\": \"hunter2\"");
    CHECK(session_init_json(cfg) == 0, "session_init_json with a short secret");
    CHECK_ERROR(SESSION_ERROR_CONFIG, "session_init_json with a short secret");
    CHECK(session_last_error() == NULL || strstr(session_last_error(), "hunter2") == NULL,
          "the init's message does not show the secret");
    free(cfg);
    /* 32 bytes exactly is enough. */
    cfg = config_with("\"secret\": \"0123456789abcdef0123456789abcdef\"");
    session_store_t *h = session_store_open_json(cfg, NULL);
    CHECK(h != NULL, "a secret of exactly 32 bytes");
    char *id = h ? session_store_create(h, "x") : NULL;
    CHECK(is_session_id(id), "create with a 32-byte secret");
    CHECK(id == NULL || session_store_destroy(h, id), "destroy");
    free(id);
    session_store_close(h);
    free(cfg);
}

static void test_encryption(void)
{
    scope = "encryption";
    char *cfg_a = config_with("\"secret\": \"" SECRET_A "\", \"owner_key\": \"user_id\"");
    session_store_t *ha = session_store_open_json(cfg_a, NULL);
    free(cfg_a);
    CHECK(ha != NULL, "open a store with secret A");
    if (ha != NULL) {
        char *sealed_id = test_sealed_calls(ha);
        test_at_rest(ha, sealed_id);
        if (driver == DRIVER_FILE)
            test_damaged_file(ha);
        else if (driver == DRIVER_REDIS)
            test_damaged_redis(ha);
        test_moved_record(ha);
        test_rotation(ha);
        if (sealed_id != NULL)
            CHECK(session_store_destroy(ha, sealed_id), "destroy");
        free(sealed_id);
        session_store_close(ha);
    }
    test_bad_secrets();
}

/* ---- 2. cookies ------------------------------------------------------------------ */

#define ID_A "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define ID_B "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

typedef struct {
    const char *header; /* {A} {B} {AU} {Ax} {A63} {A65} are replaced */
    int want;           /* 0: NOT_FOUND, 1: ID_A, 2: ID_B */
    const char *what;
} cookie_case_t;

static const cookie_case_t default_cases[] = {
    {"session_id={A}", 1, "the cookie alone"},
    {"Cookie: session_id={A}", 1, "a leading Cookie:"},
    {"Cookie:session_id={A}", 1, "a leading Cookie: without a space"},
    {"cookie: lang=en; session_id={A}", 1, "a leading lowercase cookie: (HTTP/2)"},
    {"lang=en-US; session_id={A}; theme=dark; _ga=GA1.2.3.4", 1, "among several cookies"},
    {"_ga=GA1.2.1234567890.1234567890; _gid=GA1.2.987654321.1234567890; csrftoken=x9Y8z7; "
     "session_id={A}",
     1, "after analytics and CSRF cookies"},
    {" \t session_id \t = \t {A} \t ; x=1", 1, "spaces and tabs around name and value"},
    {"a=1;session_id={A};b=2", 1, "no spaces at all"},
    {"session_id={A};", 1, "a trailing semicolon"},
    {"session_id=\"{A}\"", 1, "a quoted value"},
    {"x=\"a;b\"; session_id={A}", 1, "after a quoted value holding a semicolon"},
    {"session_id={A}; session_id={B}", 1, "the same name twice: the first wins"},
    {"session_id=deleted; session_id={B}", 2, "a malformed first value, a well-formed second"},
    {"session_id=; session_id={B}", 2, "an empty first value, a well-formed second"},
    {"session_id; session_id={A}", 1, "a name without = first"},
    {"=; ={B}; session_id={A}", 1, "empty names first"},
    {"my_session_id={A}; session_id={B}", 2, "a longer name ending in session_id first"},
    {"session_id={AU}", 0, "uppercase hex"},
    {"session_id={Ax}", 0, "one uppercase letter"},
    {"session_id={A63}", 0, "63 characters"},
    {"session_id={A65}", 0, "65 characters"},
    {"session_id=\"{A}", 0, "an opening quote only"},
    {"session_id={A}\"", 0, "a closing quote only"},
    {"session_id=\" {A} \"", 0, "spaces inside the quotes"},
    {"session_id=\"\"", 0, "an empty quoted value"},
    {"xsession_id={A}", 0, "a name with a prefix"},
    {"session_idx={A}", 0, "a name with a suffix"},
    {"session_i={A}; ession_id={A}; _id={A}; id={A}; session={A}; session-id={A}", 0,
     "names that are prefixes, suffixes or look-alikes of session_id"},
    {"Session_ID={A}; SESSION_ID={A}", 0, "names differing in case"},
    {"session_id={A} {B}", 0, "two values in one"},
    {"session_id={A}, lang=en", 0, "comma-separated cookies (RFC 2965 style)"},
    {"session_id={A}=", 0, "a value with a trailing ="},
    {"session_id=={A}", 0, "a value with a leading ="},
    {"session_id=../../../../etc/passwd", 0, "a path"},
    {"session_id=%61{A63}", 0, "percent-encoding"},
    {"session_id={A}\x01", 0, "a control character after the value"},
    {"", 0, "an empty header"},
    {";;;", 0, "only semicolons"},
    {"Cookie:", 0, "only Cookie:"},
    {" \t \t ", 0, "only white space"},
    {"session_id", 0, "the name alone"},
    {"session_id=", 0, "the name and = alone"},
};

static const cookie_case_t named_cases[] = {
    {"sid={A}", 1, "the custom name"},
    {"session_id={A}; sid={B}", 2, "the default name is not the session cookie any more"},
    {"session_id={A}", 0, "only the default name"},
    {"sids={A}; xsid={A}; si={A}", 0, "look-alikes of the custom name"},
};

/* `tmpl` with the tokens replaced. Free the result. */
static char *cookie_header_of(const char *tmpl)
{
    char upper[SESSION_ID_LEN + 1], one_upper[SESSION_ID_LEN + 1];
    for (int i = 0; i <= SESSION_ID_LEN; i++) {
        char c = ID_A[i];
        upper[i] = (c >= 'a' && c <= 'f') ? (char)(c - 'a' + 'A') : c;
        one_upper[i] = c;
    }
    one_upper[0] = 'A'; /* ID_A starts with 'a' */
    struct {
        const char *token, *value;
    } subst[] = {{"{A63}", ID_A}, {"{A65}", ID_A "0"}, {"{AU}", upper},
                 {"{Ax}", one_upper}, {"{A}", ID_A}, {"{B}", ID_B}};
    size_t cap = strlen(tmpl) * 70 + 1, n = 0;
    char *out = xmalloc(cap);
    for (const char *p = tmpl; *p;) {
        size_t i = 0;
        for (; i < sizeof subst / sizeof subst[0]; i++)
            if (strncmp(p, subst[i].token, strlen(subst[i].token)) == 0)
                break;
        if (i == sizeof subst / sizeof subst[0]) {
            out[n++] = *p++;
            continue;
        }
        size_t len = strlen(subst[i].value);
        if (strcmp(subst[i].token, "{A63}") == 0)
            len = SESSION_ID_LEN - 1;
        memcpy(out + n, subst[i].value, len);
        n += len;
        p += strlen(subst[i].token);
    }
    out[n] = '\0';
    return out;
}

/* The id in `header`, through handle `h` (NULL: the global function). */
static void check_cookie(session_store_t *h, const char *header, int want, const char *what)
{
    char *got = h ? session_store_id_from_cookie_header(h, header)
                  : session_id_from_cookie_header(header);
    int code = session_last_error_code();
    const char *msg = session_last_error();
    const char *expected = want == 1 ? ID_A : want == 2 ? ID_B : NULL;
    char label[256];
    snprintf(label, sizeof label, "%s: %s", h ? "handle" : "global", what);
    CHECK_STR(got, expected, label);
    if (expected != NULL)
        CHECK(code == SESSION_ERROR_OK && msg == NULL, label);
    else
        CHECK(code == SESSION_ERROR_NOT_FOUND && msg != NULL, label);
    free(got);
}

static void run_cookie_cases(session_store_t *h, const cookie_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *header = cookie_header_of(cases[i].header);
        check_cookie(h, header, cases[i].want, cases[i].what);
        free(header);
    }
}

/* Long hostile headers: 8 KiB of garbage, then the same followed by a valid
   cookie, NUL-free binary bytes, 8 KiB of malformed session cookies. */
static void run_hostile_headers(session_store_t *h)
{
    const char alphabet[] = "=;\" \t,abcdefABCDEF0123456789session_id\x01\x7f\xff\x80%\\";
    size_t size = 8192;
    char *garbage = xmalloc(size + 128);
    unsigned int state = 12345;
    for (size_t i = 0; i < size; i++) {
        state = state * 1103515245u + 12345u;
        garbage[i] = alphabet[(state >> 16) % (sizeof alphabet - 1)];
    }
    garbage[size] = '\0';
    check_cookie(h, garbage, 0, "8 KiB of garbage");
    strcat(garbage, "; session_id=" ID_A);
    check_cookie(h, garbage, 1, "8 KiB of garbage, then a valid cookie");

    char *binary = xmalloc(2 * 255 + 128);
    for (int i = 0; i < 2 * 255; i++)
        binary[i] = (char)(unsigned char)(i % 255 + 1);
    binary[2 * 255] = '\0';
    check_cookie(h, binary, 0, "NUL-free binary bytes 1..255, twice");
    strcat(binary, "; session_id=" ID_A);
    check_cookie(h, binary, 1, "binary bytes, then a valid cookie");

    char *many = xmalloc(size + 256);
    many[0] = '\0';
    while (strlen(many) < size)
        strcat(many, "session_id=" ID_B "x; ");
    check_cookie(h, many, 0, "8 KiB of almost-valid session cookies");
    strcat(many, "session_id=" ID_A);
    check_cookie(h, many, 1, "8 KiB of almost-valid session cookies, then a valid one");

    char *got = h ? session_store_id_from_cookie_header(h, NULL) : session_id_from_cookie_header(NULL);
    CHECK(got == NULL, "a NULL header");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "a NULL header");
    free(got);
    free(many);
    free(binary);
    free(garbage);
}

/* The Set-Cookie value `got` equals "NAME=ID; Max-Age=L; Expires=DATE; REST" for a
   now from t0 to t1 (NULL `rest_after`: a session cookie "NAME=ID; REST"). */
static int set_cookie_is(const char *got, const char *name, const char *id, long lifetime,
                         int persistent, const char *rest, time_t t0, time_t t1)
{
    if (got == NULL)
        return 0;
    if (!persistent) {
        char *want = xprintf("%s=%s; %s", name, id, rest);
        int ok = strcmp(got, want) == 0;
        free(want);
        return ok;
    }
    /* time() reads the coarse clock, a few ms behind the library's: the library
     * may already be in the next second. */
    for (time_t t = t0; t <= t1 + 1; t++) {
        time_t end = t + lifetime;
        struct tm tm;
        char date[64];
        gmtime_r(&end, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        char *want = xprintf("%s=%s; Max-Age=%ld; Expires=%s; %s", name, id, lifetime, date, rest);
        int ok = strcmp(got, want) == 0;
        free(want);
        if (ok)
            return 1;
    }
    return 0;
}

/* session_cookie_header through `h` (NULL: global) for a fresh id. */
static void check_set_cookie(session_store_t *h, const char *name, long lifetime, int persistent,
                             const char *rest, const char *what)
{
    char *id = fresh_id();
    time_t t0 = time(NULL);
    char *got = h ? session_store_cookie_header(h, id) : session_cookie_header(id);
    time_t t1 = time(NULL);
    CHECK_OK(what);
    int ok = set_cookie_is(got, name, id, lifetime, persistent, rest, t0, t1);
    if (!ok)
        fprintf(stderr, TEST_NAME ": %s: got %s\n", what, got ? got : "NULL");
    CHECK(ok, what);
    if (got != NULL && persistent) {
        char max_age[64];
        snprintf(max_age, sizeof max_age, "; Max-Age=%ld;", lifetime);
        CHECK(strstr(got, max_age) != NULL, "Max-Age equals the configured lifetime");
    }
    free(got);
    /* It does not look the session up, nor create one. */
    int exists = h ? session_store_exists(h, id) : session_exists(id);
    CHECK(exists == 0, "session_cookie_header stores nothing");
    free(id);
}

static void check_clear_cookie(session_store_t *h, const char *want, const char *what)
{
    char *got = h ? session_store_cookie_clear_header(h) : session_cookie_clear_header();
    CHECK_STR(got, want, what);
    CHECK_OK(what);
    free(got);
}

static void check_bad_cookie_config(const char *cookie, const char *says, const char *what)
{
    char *extra = xprintf("\"cookie\": %s", cookie);
    char *cfg = config_with(extra);
    session_store_t *h = session_store_open_json(cfg, NULL);
    CHECK(h == NULL, what);
    CHECK_ERROR(SESSION_ERROR_CONFIG, what);
    CHECK_MESSAGE(says, what);
    session_store_close(h);
    free(cfg);
    free(extra);
}

static void test_cookies(void)
{
    scope = "cookies";
    suite = "Set-Cookie of the default cookie";
    /* The global store: default cookie, "lifetime": 5400. */
    check_set_cookie(NULL, "session_id", 5400, 1, "Path=/; Secure; HttpOnly; SameSite=Lax",
                     "session_cookie_header with the default cookie");
    check_clear_cookie(NULL,
                       "session_id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; "
                       "Secure; HttpOnly; SameSite=Lax",
                       "session_cookie_clear_header with the default cookie");
    session_store_t *plain = session_store_open_json(base_config, NULL);
    CHECK(plain != NULL, "open a handle with the default cookie and lifetime");
    if (plain != NULL) {
        check_set_cookie(plain, "session_id", 3600, 1, "Path=/; Secure; HttpOnly; SameSite=Lax",
                         "session_store_cookie_header with the default lifetime (3600)");
        check_clear_cookie(plain,
                           "session_id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                           "Path=/; Secure; HttpOnly; SameSite=Lax",
                           "session_store_cookie_clear_header with the default cookie");
    }

    suite = "Set-Cookie of custom cookies";
    char *cfg = config_with("\"lifetime\": 900, \"cookie\": {\"name\": \"sid\", \"path\": \"/app\", "
                            "\"domain\": \"example.com\", \"secure\": false, \"same_site\": "
                            "\"Strict\", \"persistent\": false}");
    session_store_t *custom = session_store_open_json(cfg, NULL);
    free(cfg);
    CHECK(custom != NULL, "open a handle with a custom cookie");
    if (custom != NULL) {
        check_set_cookie(custom, "sid", 900, 0,
                         "Path=/app; Domain=example.com; HttpOnly; SameSite=Strict",
                         "a custom session cookie (not persistent): no Max-Age, no Secure");
        check_clear_cookie(custom,
                           "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app; "
                           "Domain=example.com; HttpOnly; SameSite=Strict",
                           "the clearing header of the custom cookie");
    }
    cfg = config_with("\"lifetime\": 1234, \"cookie\": {\"name\": \"__Host-sid\", \"http_only\": "
                      "false, \"same_site\": \"None\"}");
    session_store_t *host = session_store_open_json(cfg, NULL);
    free(cfg);
    CHECK(host != NULL, "open a handle with a __Host- cookie, SameSite=None");
    if (host != NULL) {
        check_set_cookie(host, "__Host-sid", 1234, 1, "Path=/; Secure; SameSite=None",
                         "a persistent custom cookie: Max-Age is the lifetime (1234)");
        session_store_close(host);
    }

    suite = "malformed ids";
    const char *bad_ids[] = {NULL,
                             "",
                             "abc",
                             "../../etc/passwd",
                             ID_A "0",
                             "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90",
                             "g1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
                             "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9 "};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        char *got = session_cookie_header(bad_ids[i]);
        CHECK(got == NULL, "session_cookie_header of a malformed id");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_cookie_header of a malformed id");
        free(got);
        got = custom ? session_store_cookie_header(custom, bad_ids[i]) : NULL;
        CHECK(got == NULL, "session_store_cookie_header of a malformed id");
        if (custom != NULL)
            CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT,
                        "session_store_cookie_header of a malformed id");
        free(got);
    }

    suite = "the id in a Cookie: header";
    run_cookie_cases(NULL, default_cases, sizeof default_cases / sizeof default_cases[0]);
    run_hostile_headers(NULL);
    if (plain != NULL) {
        run_cookie_cases(plain, default_cases, sizeof default_cases / sizeof default_cases[0]);
        run_hostile_headers(plain);
    }
    if (custom != NULL)
        run_cookie_cases(custom, named_cases, sizeof named_cases / sizeof named_cases[0]);
    printf(TEST_NAME ": cookies: %zu Cookie: header values, each through the global API and a "
                     "handle, plus 6 hostile ones\n",
           sizeof default_cases / sizeof default_cases[0]);

    suite = "bad cookie configurations";
    check_bad_cookie_config("{\"same_site\": \"None\", \"secure\": false}", "secure",
                            "same_site None with secure false");
    check_bad_cookie_config("{\"name\": \"__Host-sid\", \"path\": \"/app\"}", "__Host-",
                            "a __Host- cookie with a path");
    check_bad_cookie_config("{\"name\": \"__Secure-sid\", \"secure\": false}", "secure",
                            "a __Secure- cookie without secure");
    check_bad_cookie_config("{\"name\": \"a b\"}", "name", "a cookie name with a space");
    check_bad_cookie_config("{\"path\": \"/a;b\"}", "path", "a path with a semicolon");
    check_bad_cookie_config("{\"same_site\": \"sometimes\"}", "same_site", "an unknown same_site");
    check_bad_cookie_config("{\"max_age\": 3}", "max_age", "an unknown cookie key");
    cfg = config_with("\"cookie\": {\"same_site\": \"None\", \"secure\": false}");
    CHECK(session_init_json(cfg) == 0, "session_init_json with same_site None, secure false");
    CHECK_ERROR(SESSION_ERROR_CONFIG, "session_init_json with same_site None, secure false");
    free(cfg);

    suite = "NULL handle";
    char *got = session_store_cookie_header(NULL, ID_A);
    CHECK(got == NULL, "session_store_cookie_header(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_cookie_header(NULL, ...)");
    free(got);
    got = session_store_cookie_clear_header(NULL);
    CHECK(got == NULL, "session_store_cookie_clear_header(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_cookie_clear_header(NULL)");
    free(got);
    got = session_store_id_from_cookie_header(NULL, "session_id=" ID_A);
    CHECK(got == NULL, "session_store_id_from_cookie_header(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_id_from_cookie_header(NULL, ...)");
    free(got);

    session_store_close(custom);
    session_store_close(plain);
}

/* ---- 3. owner index ---------------------------------------------------------- */

/* Sessions that belong to no owner, or to owners that are not "0".."9". */
static const char *unowned_data[] = {
    "{\"i\":-1}",
    "not json at all",
    "[3]",
    "{\"user_id\":null}",
    "{\"user_id\":\"\"}",
    "{\"user_id\":true}",
    "{\"user_id\":[3]}",
    "{\"user_id\":{\"id\":3}}",
    "{\"user\":{\"user_id\":3}}",
    "{\"user_id\":3.0}",
    "{\"user_id\":\"03\"}",
    "{\"user_id\":\" 3\"}",
    "{\"user_id\":-3}",
    "{\"user_id\":30}",
    "{\"uid\":3}",
};
#define UNOWNED (sizeof unowned_data / sizeof unowned_data[0])

static char *owner_data(int owner, int i)
{
    return xprintf("{\"user_id\":%d,\"i\":%d,\"note\":\"session %d of owner %d\"}", owner, i,
                   i / OWNERS, owner);
}

static void test_owner_index(void)
{
    scope = "owner index";
    suite = "10 owners";
    int total = OWNERS * per_owner;
    char **ids = calloc((size_t)total, sizeof *ids);
    char **data = calloc((size_t)total, sizeof *data);
    char *unowned[UNOWNED];
    if (ids == NULL || data == NULL)
        die("out of memory");
    long count0 = session_count();
    CHECK(count0 >= 0, "session_count");
    double t0 = now_s();
    int create_failures = 0;
    for (int i = 0; i < total; i++) {
        data[i] = owner_data(i % OWNERS, i);
        ids[i] = session_create(data[i]);
        if (!is_session_id(ids[i]) && create_failures++ == 0)
            CHECK(0, "create an owned session");
    }
    for (size_t u = 0; u < UNOWNED; u++) {
        unowned[u] = session_create(unowned_data[u]);
        CHECK(is_session_id(unowned[u]), "create a session without owner 0..9");
    }
    CHECK(create_failures == 0, "every owned session was created");
    printf(TEST_NAME ": owner index: %d sessions of %d owners and %zu others created in %.2f s\n",
           total, OWNERS, UNOWNED, now_s() - t0);
    CHECK(session_count() - count0 == total + (long)UNOWNED, "session_count grew by all of them");

    /* count_owner and list_owner agree, and list exactly the owner's sessions. */
    id_list_t list = {0, NULL};
    char **mine = calloc((size_t)per_owner + 1, sizeof *mine);
    if (mine == NULL)
        die("out of memory");
    int owners_ok = 0;
    for (int o = 0; o < OWNERS; o++) {
        char owner[16];
        snprintf(owner, sizeof owner, "%d", o);
        for (int k = 0; k < per_owner; k++)
            mine[k] = ids[k * OWNERS + o];
        long c = session_count_owner(owner);
        long n = list_owner(NULL, owner, &list);
        if (c == per_owner && n == per_owner && same_ids(&list, mine, per_owner))
            owners_ok++;
        else
            fprintf(stderr, TEST_NAME ": owner %s: count_owner %ld, list_owner %ld ids\n", owner,
                    c, n);
    }
    CHECK(owners_ok == OWNERS, "each owner counts and lists exactly its sessions");
    CHECK(session_count_owner("10") == 0, "an owner without sessions counts 0");
    char *none = session_list_owner("10");
    CHECK_STR(none, "[]", "an owner without sessions lists []");
    free(none);
    CHECK(session_count_owner("null") == 0 && session_count_owner("true") == 0,
          "null and true are no owners");
    CHECK(session_count_owner("3.0") == 1 && session_count_owner("-3") == 1 &&
              session_count_owner("03") == 1 && session_count_owner("30") == 1,
          "owners are compared as text: 3.0, -3, 03 and 30 are not 3");

    /* destroy_owner("3") ends exactly owner 3's sessions. */
    suite = "destroy_owner";
    t0 = now_s();
    long destroyed = session_destroy_owner("3");
    double took = now_s() - t0;
    CHECK(destroyed == per_owner, "destroy_owner(\"3\") returns exactly its number of sessions");
    CHECK_OK("destroy_owner");
    CHECK(session_count_owner("3") == 0, "owner 3 counts 0 afterwards");
    none = session_list_owner("3");
    CHECK_STR(none, "[]", "owner 3 lists [] afterwards");
    free(none);
    CHECK(session_destroy_owner("3") == 0, "a second destroy_owner(\"3\") ends nothing");
    int gone = 0, intact = 0;
    for (int i = 0; i < total; i++) {
        if (ids[i] == NULL)
            continue;
        char *got = session_get(ids[i]);
        int code = session_last_error_code();
        if (i % OWNERS == 3)
            gone += got == NULL && code == SESSION_ERROR_NOT_FOUND;
        else
            intact += same(got, data[i]);
        free(got);
    }
    int unowned_intact = 0;
    for (size_t u = 0; u < UNOWNED; u++) {
        char *got = session_get(unowned[u]);
        unowned_intact += same(got, unowned_data[u]);
        free(got);
    }
    CHECK(gone == per_owner, "every session of owner 3 is gone (NOT_FOUND)");
    CHECK(intact == total - per_owner, "every other owned session reads with its exact data");
    CHECK(unowned_intact == (int)UNOWNED, "every session without owner 3 reads with its data");
    CHECK(session_count() - count0 == total - per_owner + (long)UNOWNED,
          "session_count fell by exactly owner 3's sessions");
    owners_ok = 0;
    for (int o = 0; o < OWNERS; o++) {
        char owner[16];
        snprintf(owner, sizeof owner, "%d", o);
        long want = o == 3 ? 0 : per_owner;
        owners_ok += session_count_owner(owner) == want && list_owner(NULL, owner, &list) == want;
    }
    CHECK(owners_ok == OWNERS, "the other owners still count and list all their sessions");
    printf(TEST_NAME ": owner index: destroy_owner(\"3\") ended %ld sessions in %.3f s; %d owned "
                     "and %d other sessions intact\n",
           destroyed, took, intact, unowned_intact);

    /* Owners follow the writes. */
    suite = "owners follow the writes";
    const char *moved = ids[5]; /* owner 5 */
    CHECK(session_set_value(moved, "user_id", "6"), "set_value user_id 5 -> 6");
    CHECK(session_count_owner("5") == per_owner - 1, "owner 5 lost the session");
    CHECK(session_count_owner("6") == per_owner + 1, "owner 6 gained it");
    CHECK(list_owner(NULL, "6", &list) == per_owner + 1 && listed(&list, moved),
          "owner 6 lists it");
    CHECK(list_owner(NULL, "5", &list) == per_owner - 1 && !listed(&list, moved),
          "owner 5 does not list it");
    CHECK(session_set_value(moved, "user_id", "\"6\""), "set_value user_id 6 -> \"6\"");
    CHECK(session_count_owner("6") == per_owner + 1, "the string \"6\" is owner 6 too");
    CHECK(session_set_value(moved, "user_id", "\"mover\""), "set_value user_id -> \"mover\"");
    CHECK(session_count_owner("6") == per_owner, "owner 6 lost it");
    CHECK(session_count_owner("mover") == 1, "owner mover has it");
    CHECK(session_delete_value(moved, "user_id"), "delete_value user_id");
    CHECK(session_count_owner("mover") == 0, "without user_id it belongs to nobody");
    char *got = session_get(moved);
    CHECK_STR(got, "{\"i\":5,\"note\":\"session 0 of owner 5\"}", "its other members stay");
    free(got);
    CHECK(session_set_value(unowned[0], "user_id", "\"mover\""), "set_value adds an owner");
    CHECK(list_owner(NULL, "mover", &list) == 1 && listed(&list, unowned[0]),
          "the new owner lists the session");
    const char *of7 = ids[7];
    CHECK(session_update(of7, "{\"user_id\":\"mover\",\"was\":7}"), "update to another owner");
    CHECK(session_count_owner("7") == per_owner - 1, "owner 7 lost the session");
    CHECK(session_count_owner("mover") == 2, "owner mover has two");
    char *regenerated = session_regenerate(of7);
    CHECK(is_session_id(regenerated), "regenerate a session of owner mover");
    CHECK(list_owner(NULL, "mover", &list) == 2 && listed(&list, regenerated) &&
              !listed(&list, of7) && listed(&list, unowned[0]),
          "after regenerate the owner lists the new id, not the old");
    CHECK(session_destroy_owner("mover") == 2, "destroy_owner(\"mover\")");
    CHECK(session_destroy(moved), "destroy the session left without owner");
    CHECK(regenerated == NULL || session_exists(regenerated) == 0, "gone");
    free(regenerated);

    /* The list starts with the session that ends first. */
    suite = "list order";
    char *t300 = session_create_ttl("{\"user_id\":\"ttl-order\"}", 300);
    char *t100 = session_create_ttl("{\"user_id\":\"ttl-order\"}", 100);
    char *t200 = session_create_ttl("{\"user_id\":\"ttl-order\"}", 200);
    char *listing = session_list_owner("ttl-order");
    char *want = xprintf("[\"%s\",\"%s\",\"%s\"]", t100 ? t100 : "", t200 ? t200 : "",
                         t300 ? t300 : "");
    CHECK_STR(listing, want, "list_owner starts with the session that ends first");
    free(want);
    free(listing);
    CHECK(session_destroy_owner("ttl-order") == 3, "destroy_owner(\"ttl-order\")");
    free(t100);
    free(t200);
    free(t300);

    /* Clean up for the parts that follow (they count deltas only). */
    long left = 0;
    for (int o = 0; o < OWNERS; o++) {
        char owner[16];
        snprintf(owner, sizeof owner, "%d", o);
        left += session_destroy_owner(owner);
    }
    CHECK(left == (long)(total - per_owner - 2), "destroy_owner of the other owners");
    for (size_t u = 0; u < UNOWNED; u++) {
        CHECK(unowned[u] == NULL || session_destroy(unowned[u]), "destroy");
        free(unowned[u]);
    }
    for (int i = 0; i < total; i++) {
        free(ids[i]);
        free(data[i]);
    }
    free(list.ids);
    free(mine);
    free(data);
    free(ids);
}

static void test_max_per_owner(void)
{
    scope = "owner index";
    suite = "max_sessions_per_owner";
    char *cfg = config_with("\"owner_key\": \"user_id\", \"max_sessions_per_owner\": 3");
    session_store_t *h = session_store_open_json(cfg, NULL);
    free(cfg);
    CHECK(h != NULL, "open a store with max_sessions_per_owner 3");
    if (h == NULL)
        return;
    char *other = session_store_create(h, "{\"user_id\":\"cap-other\"}");
    char *nobody = session_store_create(h, "{\"x\":1}");
    char *ids[5] = {NULL};
    id_list_t list = {0, NULL};
    for (int k = 0; k < 5; k++) {
        sleep_ms(5); /* distinct ends, also in Redis's milliseconds */
        char data[64];
        snprintf(data, sizeof data, "{\"user_id\":\"cap-owner\",\"k\":%d}", k);
        ids[k] = session_store_create(h, data);
        CHECK(is_session_id(ids[k]), "create for the capped owner");
        long want = k < 3 ? k + 1 : 3;
        CHECK(session_store_count_owner(h, "cap-owner") == want,
              "the owner never has more than 3 sessions");
    }
    for (int k = 0; k < 2; k++)
        CHECK_GET_FAILS(h, ids[k], SESSION_ERROR_NOT_FOUND,
                        "the 4th and 5th creates ended the two oldest");
    for (int k = 2; k < 5; k++) {
        char data[64];
        snprintf(data, sizeof data, "{\"user_id\":\"cap-owner\",\"k\":%d}", k);
        CHECK_GET(h, ids[k], data, "the three newest stay");
    }
    CHECK(list_owner(h, "cap-owner", &list) == 3 && same(list.ids[0], ids[2]) &&
              same(list.ids[1], ids[3]) && same(list.ids[2], ids[4]),
          "list_owner: the three newest, oldest first");
    CHECK_GET(h, other, "{\"user_id\":\"cap-other\"}", "another owner's session stays");
    CHECK_GET(h, nobody, "{\"x\":1}", "a session without owner stays");
    CHECK(session_store_destroy_owner(h, "cap-owner") == 3, "destroy_owner");
    CHECK(session_store_destroy_owner(h, "cap-other") == 1, "destroy_owner");
    CHECK(nobody == NULL || session_store_destroy(h, nobody), "destroy");
    for (int k = 0; k < 5; k++)
        free(ids[k]);
    free(list.ids);
    free(other);
    free(nobody);
    session_store_close(h);
}

static void test_owner_errors(void)
{
    scope = "owner index";
    suite = "NULL and empty owners";
    session_store_t *h = session_store(NULL);
    CHECK(h != NULL, "session_store(NULL)");
    CHECK(session_destroy_owner(NULL) == -1, "session_destroy_owner(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_destroy_owner(NULL)");
    char *r = session_list_owner(NULL);
    CHECK(r == NULL, "session_list_owner(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_list_owner(NULL)");
    free(r);
    CHECK(session_count_owner(NULL) == -1, "session_count_owner(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_count_owner(NULL)");
    CHECK(session_count_owner("") == -1, "session_count_owner(\"\")");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_count_owner(\"\")");
    CHECK(session_destroy_owner("") == -1, "session_destroy_owner(\"\")");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_destroy_owner(\"\")");
    if (h != NULL) {
        CHECK(session_store_destroy_owner(h, NULL) == -1, "session_store_destroy_owner(h, NULL)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_destroy_owner(h, NULL)");
        r = session_store_list_owner(h, NULL);
        CHECK(r == NULL, "session_store_list_owner(h, NULL)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_list_owner(h, NULL)");
        free(r);
        CHECK(session_store_count_owner(h, NULL) == -1, "session_store_count_owner(h, NULL)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_count_owner(h, NULL)");
        r = session_store_list_owner(h, "");
        CHECK(r == NULL, "session_store_list_owner(h, \"\")");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_list_owner(h, \"\")");
        free(r);
        session_store_close(h);
    }
    CHECK(session_store_destroy_owner(NULL, "1") == -1, "session_store_destroy_owner(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_destroy_owner(NULL, ...)");
    r = session_store_list_owner(NULL, "1");
    CHECK(r == NULL, "session_store_list_owner(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_list_owner(NULL, ...)");
    free(r);
    CHECK(session_store_count_owner(NULL, "1") == -1, "session_store_count_owner(NULL, ...)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_count_owner(NULL, ...)");

    suite = "a store without owner_key";
    session_store_t *plain = session_store_open_json(base_config, NULL);
    CHECK(plain != NULL, "open a store without owner_key");
    if (plain != NULL) {
        char *id = session_store_create(plain, "{\"user_id\":1}");
        CHECK(is_session_id(id), "create {\"user_id\":1} without an owner index");
        CHECK(session_store_destroy_owner(plain, "1") == -1, "destroy_owner without owner_key");
        CHECK_ERROR(SESSION_ERROR_CONFIG, "destroy_owner without owner_key");
        CHECK_MESSAGE("owner_key", "the message names owner_key");
        r = session_store_list_owner(plain, "1");
        CHECK(r == NULL, "list_owner without owner_key");
        CHECK_ERROR(SESSION_ERROR_CONFIG, "list_owner without owner_key");
        free(r);
        CHECK(session_store_count_owner(plain, "1") == -1, "count_owner without owner_key");
        CHECK_ERROR(SESSION_ERROR_CONFIG, "count_owner without owner_key");
        CHECK_GET(plain, id, "{\"user_id\":1}", "the refused destroy_owner ended nothing");
        CHECK(id == NULL || session_store_destroy(plain, id), "destroy");
        free(id);
        session_store_close(plain);
    }
    char *cfg = config_with("\"max_sessions_per_owner\": 3");
    session_store_t *bad = session_store_open_json(cfg, NULL);
    CHECK(bad == NULL, "max_sessions_per_owner without owner_key");
    CHECK_ERROR(SESSION_ERROR_CONFIG, "max_sessions_per_owner without owner_key");
    session_store_close(bad);
    free(cfg);
}

/* ---- 4. owner index across processes -------------------------------------------- */

typedef struct {
    target_t t;
    int proc, index, count;
    char **ids;
    int failures;
    char first[256];
} creator_t;

static int mp_owner_of(int proc, int thread, int k)
{
    return (proc * PROCESS_THREADS * per_thread + thread * per_thread + k) % MP_OWNERS;
}

static void *creator(void *arg)
{
    creator_t *w = arg;
    for (int k = 0; k < w->count; k++) {
        char data[128];
        snprintf(data, sizeof data, "{\"user_id\":\"mp-%d\",\"p\":%d,\"t\":%d,\"k\":%d}",
                 mp_owner_of(w->proc, w->index, k), w->proc, w->index, k);
        w->ids[k] = t_create(&w->t, data);
        if (!is_session_id(w->ids[k]) && w->failures++ == 0) {
            const char *msg = session_last_error();
            snprintf(w->first, sizeof w->first, "create %d: code %d: %s", k,
                     session_last_error_code(), msg ? msg : "(NULL)");
        }
    }
    return NULL;
}

/* In a child: PROCESS_THREADS threads create sessions; their ids go to the file
   `path`, one "OWNER ID" a line. Returns the exit status. */
static int run_child(int proc, const char *path)
{
    session_store_t *h = session_store(NULL);
    if (h == NULL) {
        fprintf(stderr, TEST_NAME ": process %d: session_store(NULL) failed\n", proc);
        return 1;
    }
    creator_t w[PROCESS_THREADS];
    pthread_t th[PROCESS_THREADS];
    for (int i = 0; i < PROCESS_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].t.name = i % 2 ? "handle" : "global";
        w[i].t.h = i % 2 ? h : NULL;
        w[i].t.global = w[i].t.h == NULL;
        w[i].proc = proc;
        w[i].index = i;
        w[i].count = per_thread;
        w[i].ids = calloc((size_t)per_thread, sizeof *w[i].ids);
        if (w[i].ids == NULL || pthread_create(&th[i], NULL, creator, &w[i]) != 0)
            die("cannot start a thread");
    }
    int failures = 0;
    FILE *out = fopen(path, "w");
    if (out == NULL)
        die("cannot create %s", path);
    for (int i = 0; i < PROCESS_THREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures) {
            fprintf(stderr, TEST_NAME ": process %d thread %d: %d failures, first: %s\n", proc, i,
                    w[i].failures, w[i].first);
            failures += w[i].failures;
        }
        for (int k = 0; k < per_thread; k++) {
            if (w[i].ids[k] != NULL)
                fprintf(out, "mp-%d %s\n", mp_owner_of(proc, i, k), w[i].ids[k]);
            free(w[i].ids[k]);
        }
        free(w[i].ids);
    }
    if (fclose(out) != 0)
        failures++;
    session_store_close(h);
    return failures == 0 ? 0 : 1;
}

static void test_processes(void)
{
    scope = "owner index";
    suite = "2 processes x 4 threads";
    if (driver == DRIVER_MEMORY) {
        printf(TEST_NAME ": multi-process part skipped: the memory driver keeps sessions per "
                         "process\n");
        return;
    }
    long count0 = session_count();
    /* Configured before fork(), as the README asks of pre-fork servers; no other
       thread is inside a libsession call. */
    fflush(stdout);
    fflush(stderr);
    double t0 = now_s();
    pid_t pids[PROCESSES];
    char paths[PROCESSES][64];
    for (int p = 0; p < PROCESSES; p++) {
        snprintf(paths[p], sizeof paths[p], "contents_test-%d-%d.ids", (int)getpid(), p);
        pids[p] = fork();
        if (pids[p] < 0)
            die("fork failed: %s", strerror(errno));
        if (pids[p] == 0) {
            int status = run_child(p, paths[p]);
            session_shutdown();
            free(global_config);
            free(session_dir);
            free(key_prefix);
            fflush(stdout);
            fflush(stderr);
            _exit(status);
        }
    }
    int children_ok = 0;
    for (int p = 0; p < PROCESSES; p++) {
        int status = 0;
        if (waitpid(pids[p], &status, 0) == pids[p] && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            children_ok++;
        else
            fprintf(stderr, TEST_NAME ": process %d ended with status 0x%x\n", p, status);
    }
    double took = now_s() - t0;
    CHECK(children_ok == PROCESSES, "every create of the 2 processes succeeded");

    /* What the children created, by owner. */
    int total = PROCESSES * PROCESS_THREADS * per_thread;
    int each = total / MP_OWNERS;
    char **created[MP_OWNERS];
    int n_created[MP_OWNERS] = {0};
    for (int o = 0; o < MP_OWNERS; o++) {
        created[o] = calloc((size_t)total, sizeof *created[o]);
        if (created[o] == NULL)
            die("out of memory");
    }
    for (int p = 0; p < PROCESSES; p++) {
        FILE *in = fopen(paths[p], "r");
        CHECK(in != NULL, "read a child's ids");
        if (in == NULL)
            continue;
        char line[160];
        while (fgets(line, sizeof line, in) != NULL) {
            int o = -1;
            char id[SESSION_ID_LEN + 2];
            if (sscanf(line, "mp-%d %65s", &o, id) == 2 && o >= 0 && o < MP_OWNERS &&
                is_session_id(id) && n_created[o] < total)
                created[o][n_created[o]++] = xstrdup(id);
        }
        fclose(in);
        unlink(paths[p]);
    }
    int exact = 0, listed_ok = 0;
    id_list_t list = {0, NULL};
    for (int o = 0; o < MP_OWNERS; o++) {
        char owner[16];
        snprintf(owner, sizeof owner, "mp-%d", o);
        long c = session_count_owner(owner);
        long n = list_owner(NULL, owner, &list);
        exact += n_created[o] == each && c == each;
        listed_ok += n == each && same_ids(&list, created[o], n_created[o]);
        if (c != each || n != each || n_created[o] != each)
            fprintf(stderr, TEST_NAME ": owner %s: created %d, count_owner %ld, list_owner %ld\n",
                    owner, n_created[o], c, n);
    }
    CHECK(exact == MP_OWNERS, "count_owner of each owner equals exactly what was created for it");
    CHECK(listed_ok == MP_OWNERS, "list_owner of each owner lists exactly its created sessions");
    CHECK(session_count() - count0 == total, "session_count grew by every session created");
    long ended = 0;
    int all_gone = 1;
    for (int o = 0; o < MP_OWNERS; o++) {
        char owner[16];
        snprintf(owner, sizeof owner, "mp-%d", o);
        long d = session_destroy_owner(owner);
        CHECK(d == each, "destroy_owner ends exactly the owner's sessions");
        ended += d > 0 ? d : 0;
        CHECK(session_count_owner(owner) == 0, "the owner has none left");
        for (int k = 0; k < n_created[o]; k++) {
            if (session_exists(created[o][k]) != 0)
                all_gone = 0;
            free(created[o][k]);
        }
        free(created[o]);
    }
    CHECK(all_gone, "every session of the destroyed owners is gone");
    CHECK(session_count() == count0, "session_count is back where it was");
    printf(TEST_NAME ": %d processes x %d threads: %d sessions of %d owners in %.2f s, each owner "
                     "exactly %d (%d of %d right), destroy_owner ended %ld\n",
           PROCESSES, PROCESS_THREADS, total, MP_OWNERS, took, each, exact, MP_OWNERS, ended);
    free(list.ids);
}

/* ---- main ------------------------------------------------------------------------ */

static int parse_count(const char *s, const char *what)
{
    char *end = NULL;
    long n = strtol(s, &end, 10);
    if (end == s || *end != '\0' || n < 1 || n > 100000)
        die("%s must be a number from 1 to 100000, got \"%s\"", what, s);
    return (int)n;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr,
                "usage: contents_test CONFIG_JSON [SESSIONS_PER_OWNER [SESSIONS_PER_THREAD]]\n");
        return 2;
    }
    base_config = argv[1];
    if (argc > 2)
        per_owner = parse_count(argv[2], "SESSIONS_PER_OWNER");
    if (argc > 3)
        per_thread = parse_count(argv[3], "SESSIONS_PER_THREAD");
    if (per_thread % MP_OWNERS != 0)
        die("SESSIONS_PER_THREAD must be a multiple of %d", MP_OWNERS);
    if (OWNERS * per_owner > MAX_LISTED || PROCESSES * PROCESS_THREADS * per_thread > MAX_LISTED)
        die("too many sessions for one list");
    const char *reserved[] = {"\"secret\"",   "\"secret_fallbacks\"", "\"cookie\"",
                              "\"lifetime\"", "\"max_lifetime\"",     "\"owner_key\"",
                              "\"max_sessions_per_owner\""};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strstr(base_config, reserved[i]) != NULL)
            die("CONFIG_JSON must not set %s: the test sets it", reserved[i]);
    create_roots(base_config);
    driver = driver_of(base_config);
    if (driver == DRIVER_FILE) {
        char *root = config_string(base_config, "root");
        if (root == NULL)
            die("the file store's config names no \"root\"");
        session_dir = xprintf("%s/sessions", root);
        free(root);
    } else if (driver == DRIVER_REDIS) {
        const char *port = getenv("SESSION_TEST_REDIS_PORT");
        if (port == NULL || parse_count(port, "SESSION_TEST_REDIS_PORT") > 65535)
            die("the Redis driver needs SESSION_TEST_REDIS_PORT, the port of its redis-server");
        snprintf(redis_port, sizeof redis_port, "%s", port);
        key_prefix = config_string(base_config, "key_prefix");
        if (key_prefix == NULL)
            key_prefix = xstrdup("session:");
    }
    printf(TEST_NAME ": %s driver, %d sessions per owner, %d sessions per thread, config %s\n",
           driver_name(), per_owner, per_thread, base_config);
    double t0 = now_s();

    /* The global store: an owner index, "lifetime" 5400 (the default cookie's
       Max-Age), max_lifetime 7200. */
    global_config = config_with("\"owner_key\": \"user_id\", \"lifetime\": 5400, "
                                "\"max_lifetime\": 7200");
    CHECK(session_init_json(global_config), "session_init_json");
    CHECK_OK("session_init_json");

    test_encryption();
    printf(TEST_NAME ": encryption: %.2f s\n", now_s() - t0);
    test_cookies();
    test_owner_index();
    test_max_per_owner();
    test_owner_errors();
    printf(TEST_NAME ": owner index: %.2f s\n", now_s() - t0);
    /* After every handle is closed and no thread runs: fork(). */
    test_processes();

    session_shutdown();
    free(global_config);
    free(session_dir);
    free(key_prefix);
    printf(TEST_NAME ": total %.2f s\n", now_s() - t0);
    return summary();
}
