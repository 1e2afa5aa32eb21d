/*
 * multiprocess.c - libsession in a pre-fork server: workers share one file store.
 *
 * Usage: multiprocess DIR [WORKERS=4] [OPS=3000]
 *   The parent configures the file driver with storage root DIR, creates some
 *   sessions and a shared one, then forks the workers. Each worker reads the
 *   parent's sessions, runs create/get/update/destroy on its own, and updates the
 *   shared session concurrently with the others, checking that every read of it
 *   is one complete written value. Each worker reports the sessions it keeps
 *   through a pipe; the parent checks they are all readable with the right data.
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "session.h"

#define PARENT_SESSIONS 10
#define MAX_LIVE 40
#define MAX_KEEP 20
#define BUF_SIZE 32768

static char parent_ids[PARENT_SESSIONS][SESSION_ID_LEN + 1];
static char shared_id[SESSION_ID_LEN + 1];

static void die(const char *who, const char *what)
{
    int code = session_last_error_code();
    const char *msg = session_last_error();
    fprintf(stderr, "multiprocess: %s: %s (last error: code %d: %s)\n", who, what, code,
            msg ? msg : "(NULL)");
    exit(1);
}

/* Data of version `seq` of a session of worker w (w = -1: the parent). */
static void own_payload(char *buf, int w, unsigned long seq)
{
    int n = snprintf(buf, BUF_SIZE, "{\"worker\":%d,\"seq\":%lu,\"pad\":\"", w, seq);
    size_t len = (size_t)n, pad = (seq * 131u) % 3000u;
    memset(buf + len, 'a' + (int)(seq % 26), pad);
    memcpy(buf + len + pad, "\"}", 3);
}

/* A value of the shared session: a header with its total length, then a fill
   byte derived from (w, k), so a torn or mixed value is detected. */
static void shared_payload(char *buf, int w, int k)
{
    size_t total = 40 + ((size_t)k * 977u + (size_t)w * 13u) % 20000u;
    int n = snprintf(buf, BUF_SIZE, "shared:%d:%d:%zu:", w, k, total);
    memset(buf + n, 'A' + (w * 7 + k) % 26, total - (size_t)n);
    buf[total] = '\0';
}

/* 1 if `s` is a complete shared value (or the initial one). */
static int shared_valid(const char *s)
{
    if (strcmp(s, "shared:initial") == 0)
        return 1;
    int w, k;
    size_t total;
    if (sscanf(s, "shared:%d:%d:%zu:", &w, &k, &total) != 3 || w < 0 || k < 0 || total >= BUF_SIZE)
        return 0;
    char *want = malloc(BUF_SIZE);
    if (want == NULL)
        return 0;
    shared_payload(want, w, k);
    int ok = strcmp(s, want) == 0;
    free(want);
    return ok;
}

typedef struct {
    char *id;
    unsigned long seq;
} live_t;

static int worker(int w, int ops, int out_fd)
{
    char who[32];
    snprintf(who, sizeof who, "worker %d", w);
    char *buf = malloc(BUF_SIZE), *want = malloc(BUF_SIZE);
    if (buf == NULL || want == NULL)
        die(who, "out of memory");

    /* The parent's sessions are visible. */
    for (int i = 0; i < PARENT_SESSIONS; i++) {
        char *got = session_get(parent_ids[i]);
        if (got == NULL)
            die(who, "cannot read a session of the parent");
        own_payload(want, -1, (unsigned long)i);
        if (strcmp(got, want) != 0)
            die(who, "a session of the parent has the wrong data");
        free(got);
    }

    live_t live[MAX_LIVE];
    int nlive = 0, shared_writes = 0;
    unsigned long seq = 0;
    unsigned int rng = 12345u + (unsigned int)w * 7919u;
    for (int op = 0; op < ops; op++) {
        int r = rand_r(&rng) % 100;
        if (r < 10) {
            shared_payload(buf, w, shared_writes++);
            if (!session_update(shared_id, buf))
                die(who, "session_update of the shared session failed");
            continue;
        }
        if (r < 20) {
            char *got = session_get(shared_id);
            if (got == NULL)
                die(who, "session_get of the shared session failed");
            if (!shared_valid(got)) {
                fprintf(stderr, "%s: shared session holds a torn value: %.80s\n", who, got);
                exit(1);
            }
            free(got);
            continue;
        }
        if (nlive == 0 || (r < 40 && nlive < MAX_LIVE)) {
            own_payload(buf, w, ++seq);
            char *id = session_create(buf);
            if (id == NULL)
                die(who, "session_create failed");
            live[nlive].id = id;
            live[nlive].seq = seq;
            nlive++;
        } else if (r < 70) {
            live_t *s = &live[rand_r(&rng) % nlive];
            char *got = session_get(s->id);
            if (got == NULL)
                die(who, "session_get of an own session failed");
            own_payload(want, w, s->seq);
            if (strcmp(got, want) != 0)
                die(who, "an own session has the wrong data");
            free(got);
        } else if (r < 90) {
            live_t *s = &live[rand_r(&rng) % nlive];
            own_payload(buf, w, ++seq);
            if (!session_update(s->id, buf))
                die(who, "session_update of an own session failed");
            s->seq = seq;
        } else {
            int k = rand_r(&rng) % nlive;
            if (!session_destroy(live[k].id))
                die(who, "session_destroy failed");
            char *got = session_get(live[k].id);
            if (got != NULL || session_last_error_code() != SESSION_ERROR_NOT_FOUND)
                die(who, "a destroyed session is still readable");
            free(live[k].id);
            live[k] = live[--nlive];
        }
    }
    /* Keep up to MAX_KEEP sessions for the parent to check; destroy the rest. */
    FILE *out = fdopen(out_fd, "w");
    if (out == NULL)
        die(who, "fdopen");
    for (int i = 0; i < nlive; i++) {
        if (i < MAX_KEEP) {
            fprintf(out, "%s %lu\n", live[i].id, live[i].seq);
        } else if (!session_destroy(live[i].id)) {
            die(who, "final session_destroy failed");
        }
        free(live[i].id);
    }
    fclose(out);
    free(buf);
    free(want);
    session_shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: multiprocess DIR [WORKERS] [OPS]\n");
        return 2;
    }
    int workers = argc > 2 ? atoi(argv[2]) : 4;
    int ops = argc > 3 ? atoi(argv[3]) : 3000;
    if (workers < 1 || workers > 64 || ops < 1) {
        fprintf(stderr, "multiprocess: bad WORKERS or OPS\n");
        return 2;
    }
    if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) {
        perror(argv[1]);
        return 1;
    }
    char config[2048];
    snprintf(config, sizeof config,
             "{\"sessions\": {\"driver\": \"storage\", \"storage_name\": \"s\", \"lifetime\": 3600}, "
             "\"storages\": {\"s\": {\"type\": \"filesystem\", \"root\": \"%s\"}}}",
             argv[1]);
    if (!session_init_json(config))
        die("parent", "session_init_json");

    char *buf = malloc(BUF_SIZE);
    if (buf == NULL)
        die("parent", "out of memory");
    for (int i = 0; i < PARENT_SESSIONS; i++) {
        own_payload(buf, -1, (unsigned long)i);
        char *id = session_create(buf);
        if (id == NULL)
            die("parent", "session_create");
        memcpy(parent_ids[i], id, SESSION_ID_LEN + 1);
        free(id);
    }
    char *id = session_create("shared:initial");
    if (id == NULL)
        die("parent", "session_create of the shared session");
    memcpy(shared_id, id, SESSION_ID_LEN + 1);
    free(id);

    printf("multiprocess: %d workers x %d operations on %s\n", workers, ops, argv[1]);
    fflush(stdout);
    pid_t pids[64];
    FILE *reports[64];
    for (int w = 0; w < workers; w++) {
        int fds[2];
        if (pipe(fds) != 0) {
            perror("pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            close(fds[0]);
            for (int j = 0; j < w; j++)
                fclose(reports[j]);
            _exit(worker(w, ops, fds[1]));
        }
        close(fds[1]);
        pids[w] = pid;
        reports[w] = fdopen(fds[0], "r");
        if (reports[w] == NULL) {
            perror("fdopen");
            return 1;
        }
    }

    int failures = 0, kept_total = 0;
    for (int w = 0; w < workers; w++) {
        /* Read the report first: the worker may block on a full pipe. */
        char line[256];
        int kept = 0;
        char (*kept_ids)[SESSION_ID_LEN + 1] = malloc(MAX_KEEP * sizeof *kept_ids);
        unsigned long kept_seq[MAX_KEEP];
        while (kept_ids != NULL && fgets(line, sizeof line, reports[w]) != NULL) {
            char sid[SESSION_ID_LEN + 1];
            unsigned long seq;
            if (kept >= MAX_KEEP || sscanf(line, "%64s %lu", sid, &seq) != 2) {
                fprintf(stderr, "multiprocess: worker %d sent a bad line: %s", w, line);
                failures++;
                break;
            }
            memcpy(kept_ids[kept], sid, sizeof sid);
            kept_seq[kept++] = seq;
        }
        fclose(reports[w]);
        int status;
        if (waitpid(pids[w], &status, 0) != pids[w]) {
            perror("waitpid");
            return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "multiprocess: worker %d failed (status 0x%x)\n", w, (unsigned)status);
            failures++;
        }
        for (int i = 0; i < kept; i++) {
            char *got = session_get(kept_ids[i]);
            if (got == NULL) {
                const char *msg = session_last_error();
                fprintf(stderr, "multiprocess: session %s kept by worker %d is not readable: %s\n",
                        kept_ids[i], w, msg ? msg : "(NULL)");
                failures++;
                continue;
            }
            own_payload(buf, w, kept_seq[i]);
            if (strcmp(got, buf) != 0) {
                fprintf(stderr, "multiprocess: session kept by worker %d has the wrong data\n", w);
                failures++;
            }
            free(got);
            if (!session_destroy(kept_ids[i]))
                die("parent", "session_destroy");
        }
        kept_total += kept;
        free(kept_ids);
    }

    char *shared = session_get(shared_id);
    if (shared == NULL)
        die("parent", "session_get of the shared session");
    if (!shared_valid(shared)) {
        fprintf(stderr, "multiprocess: the shared session holds a torn value: %.80s\n", shared);
        failures++;
    } else {
        printf("multiprocess: shared session final value starts with %.24s\n", shared);
    }
    free(shared);
    for (int i = 0; i < PARENT_SESSIONS; i++) {
        char *got = session_get(parent_ids[i]);
        own_payload(buf, -1, (unsigned long)i);
        if (got == NULL || strcmp(got, buf) != 0) {
            fprintf(stderr, "multiprocess: a session of the parent changed or vanished\n");
            failures++;
        }
        free(got);
        session_destroy(parent_ids[i]);
    }
    session_destroy(shared_id);
    free(buf);
    session_shutdown();

    printf("multiprocess: %d sessions kept by workers checked, %d failures\n", kept_total, failures);
    return failures == 0 ? 0 : 1;
}
