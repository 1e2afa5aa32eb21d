/*
 * crash_test.c - a writer killed with SIGKILL never leaves a torn session.
 *
 * Usage: crash_test DIR [ROUNDS=40] [SEED]
 *   File driver with storage root DIR.
 *   Part 1: a child updates one session in a tight loop with payloads that
 *   alternate between a few bytes and ~200 KB, each self-checking (a header with
 *   the counter and the length, then a fill byte derived from the counter). The parent reads the session while the child runs, kills the child
 *   with SIGKILL after a random 0..20 ms, and then the session must hold one
 *   complete payload: never NULL, never torn.
 *   Part 2: a child creates sessions in a loop and reports each id through a pipe;
 *   once it has reported its first id it is killed the same way. Every reported id
 *   must be readable and complete, also after session_remove_expired (which must
 *   leave live sessions alone). A reported id whose session is missing fails the
 *   test (session_create had returned it), and so does a run that recorded no id
 *   at all (it would have proved nothing).
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "session.h"

#define BIG (200 * 1024)

/* Longest wait for a creating child's first reported id. */
#define FIRST_ID_TIMEOUT_MS 30000

static void die(const char *what)
{
    int code = session_last_error_code();
    const char *msg = session_last_error();
    fprintf(stderr, "crash_test: FAILED: %s (last error: code %d: %s)\n", what, code,
            msg ? msg : "(NULL)");
    exit(1);
}

/* Payload number `counter`: "P:<counter>:<length>:" then a fill byte derived from
   the counter (consecutive payloads differ), up to the length. Odd counters are
   ~200 KB, even ones a few bytes. A torn or mixed value fails payload_valid. */
static size_t payload(char *buf, unsigned long counter)
{
    size_t total = (counter % 2) ? BIG - (counter % 4096) : 24 + counter % 16;
    int n = snprintf(buf, 64, "P:%lu:%zu:", counter, total);
    /* memset keeps the writer fast, so kills land inside session_update. */
    memset(buf + n, 33 + (int)((counter * 37) % 90), total - (size_t)n);
    buf[total] = '\0';
    return total;
}

/* 1 if `s` is exactly one complete payload. */
static int payload_valid(const char *s, char *scratch)
{
    unsigned long counter;
    size_t total;
    if (sscanf(s, "P:%lu:%zu:", &counter, &total) != 2 || total > BIG)
        return 0;
    payload(scratch, counter);
    return strcmp(s, scratch) == 0;
}

static void sleep_ms(double ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

static void kill_and_reap(pid_t pid, const char *what)
{
    int status;
    kill(pid, SIGKILL);
    if (waitpid(pid, &status, 0) != pid)
        die("waitpid");
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        fprintf(stderr, "crash_test: FAILED: the %s child ended before the kill (status 0x%x)\n",
                what, (unsigned)status);
        exit(1);
    }
}

/* Part 1: kill a child in the middle of updates. */
static void update_rounds(const char *id, int rounds, unsigned int *rng, char *buf, char *scratch)
{
    long reads = 0;
    for (int round = 0; round < rounds; round++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            /* The child: update forever with alternating sizes. */
            for (unsigned long counter = (unsigned long)round * 1000000UL + 1;; counter++) {
                payload(buf, counter);
                if (!session_update(id, buf)) {
                    const char *msg = session_last_error();
                    fprintf(stderr, "crash_test: child: session_update failed: %s\n",
                            msg ? msg : "(NULL)");
                    _exit(3);
                }
            }
        }
        /* Read while the child writes, for a random 0..20 ms. */
        double deadline = now_ms() + (double)(rand_r(rng) % 21);
        do {
            char *got = session_get(id);
            if (got == NULL)
                die("session_get returned NULL during updates");
            if (!payload_valid(got, scratch)) {
                fprintf(stderr, "crash_test: FAILED: round %d: torn read: %.40s (length %zu)\n", round,
                        got, strlen(got));
                exit(1);
            }
            free(got);
            reads++;
        } while (now_ms() < deadline);
        kill_and_reap(pid, "updating");

        char *got = session_get(id);
        if (got == NULL)
            die("session_get returned NULL after the writer was killed");
        if (!payload_valid(got, scratch)) {
            fprintf(stderr, "crash_test: FAILED: round %d: torn session after SIGKILL: %.40s (length %zu)\n",
                    round, got, strlen(got));
            exit(1);
        }
        unsigned long counter = 0;
        sscanf(got, "P:%lu:", &counter);
        printf("crash_test: round %2d: killed the writer; session holds payload %lu (%zu bytes)\n", round,
               counter, strlen(got));
        free(got);
    }
    printf("crash_test: %d update rounds OK, %ld reads during updates\n", rounds, reads);
}

/* Part 2: kill a child in the middle of creates; returns the ids it reported. */
static int create_rounds(int rounds, unsigned int *rng, char *buf, char *scratch, char ***ids_out)
{
    int nids = 0, cap = 0;
    char **ids = NULL;
    for (int round = 0; round < rounds; round++) {
        int fds[2];
        if (pipe(fds) != 0)
            die("pipe");
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            close(fds[0]);
            for (unsigned long counter = 1;; counter++) {
                payload(buf, counter);
                char *id = session_create(buf);
                if (id == NULL)
                    _exit(3);
                char line[128];
                int n = snprintf(line, sizeof line, "%s %lu\n", id, counter);
                if (write(fds[1], line, (size_t)n) != n) /* < PIPE_BUF: atomic */
                    _exit(4);
                free(id);
            }
        }
        close(fds[1]);
        /* Wait until the child has reported its first id, so that every round has
           at least one session to check, then kill it a random 0..20 ms later. */
        struct pollfd first = {.fd = fds[0], .events = POLLIN};
        int ready;
        do {
            ready = poll(&first, 1, FIRST_ID_TIMEOUT_MS);
        } while (ready < 0 && errno == EINTR);
        if (ready < 0)
            die("poll");
        if (ready == 0) {
            fprintf(stderr,
                    "crash_test: FAILED: create round %d: the creating child reported no session "
                    "within %d s\n",
                    round, FIRST_ID_TIMEOUT_MS / 1000);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            exit(1);
        }
        FILE *in = fdopen(fds[0], "r");
        if (in == NULL)
            die("fdopen");
        sleep_ms((double)(rand_r(rng) % 21));
        kill_and_reap(pid, "creating");

        char line[256];
        int round_ids = 0;
        while (fgets(line, sizeof line, in) != NULL) {
            char id[SESSION_ID_LEN + 1];
            unsigned long counter;
            if (sscanf(line, "%64s %lu", id, &counter) != 2 || strlen(id) != SESSION_ID_LEN) {
                /* Cannot happen: lines are written whole. Skipping it would hide an id. */
                fprintf(stderr, "crash_test: FAILED: create round %d: malformed report line: %.100s\n",
                        round, line);
                exit(1);
            }
            if (nids == cap) {
                cap = cap ? cap * 2 : 256;
                char **grown = realloc(ids, (size_t)cap * sizeof *ids);
                if (grown == NULL)
                    die("out of memory");
                ids = grown;
            }
            ids[nids] = malloc(SESSION_ID_LEN + 1);
            if (ids[nids] == NULL)
                die("out of memory");
            memcpy(ids[nids], id, SESSION_ID_LEN + 1);
            nids++;
            round_ids++;
        }
        fclose(in);
        if (round_ids == 0) {
            fprintf(stderr,
                    "crash_test: FAILED: create round %d: the child signalled a report but no id "
                    "was read\n",
                    round);
            exit(1);
        }
        printf("crash_test: create round %d: killed the creator after %d sessions\n", round, round_ids);
    }
    (void)scratch;
    *ids_out = ids;
    return nids;
}

/* Every reported id is readable and complete: session_create had returned it, so
   its session must exist, whenever the creator was killed afterwards. Fails the
   test with the count of missing sessions otherwise. */
static void check_created(char **ids, int nids, char *scratch, const char *when)
{
    int absent = 0;
    for (int i = 0; i < nids; i++) {
        char *got = session_get(ids[i]);
        if (got == NULL) {
            if (session_last_error_code() != SESSION_ERROR_NOT_FOUND)
                die("session_get of a created session failed");
            if (absent < 5)
                fprintf(stderr, "crash_test: created session %.16s... is missing %s\n", ids[i], when);
            absent++;
            continue;
        }
        if (!payload_valid(got, scratch)) {
            fprintf(stderr, "crash_test: FAILED: created session %.16s... is torn %s\n", ids[i], when);
            exit(1);
        }
        free(got);
    }
    if (absent != 0) {
        fprintf(stderr,
                "crash_test: FAILED: %d of %d sessions whose session_create had returned are "
                "missing %s\n",
                absent, nids, when);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: crash_test DIR [ROUNDS] [SEED]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 40;
    unsigned int seed = argc > 3 ? (unsigned int)strtoul(argv[3], NULL, 10)
                                 : (unsigned int)time(NULL) ^ (unsigned int)getpid();
    if (rounds < 1) {
        fprintf(stderr, "crash_test: bad ROUNDS\n");
        return 2;
    }
    if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) {
        perror(argv[1]);
        return 1;
    }
    printf("crash_test: %d rounds, seed %u (pass it as argv[3] to replay)\n", rounds, seed);
    unsigned int rng = seed;

    char config[2048];
    snprintf(config, sizeof config,
             "{\"sessions\": {\"driver\": \"storage\", \"storage_name\": \"s\", \"lifetime\": 3600}, "
             "\"storages\": {\"s\": {\"type\": \"filesystem\", \"root\": \"%s\"}}}",
             argv[1]);
    if (!session_init_json(config))
        die("session_init_json");

    char *buf = malloc(BIG + 64), *scratch = malloc(BIG + 64);
    if (buf == NULL || scratch == NULL)
        die("out of memory");
    payload(buf, 0);
    char *id = session_create(buf);
    if (id == NULL)
        die("session_create");

    update_rounds(id, rounds, &rng, buf, scratch);

    char **ids = NULL;
    int create_round_count = rounds / 4 > 0 ? rounds / 4 : 1;
    int nids = create_rounds(create_round_count, &rng, buf, scratch, &ids);
    if (nids == 0) {
        fprintf(stderr, "crash_test: FAILED: the creating children reported no session id at all, "
                        "so part 2 proved nothing\n");
        return 1;
    }
    check_created(ids, nids, scratch, "after the kills");
    printf("crash_test: %d created sessions reported, all readable and complete\n", nids);

    /* session_remove_expired must not touch live sessions, nor the files of
       creations that were cut short less than a minute ago. */
    session_remove_expired();
    if (session_last_error_code() != SESSION_ERROR_OK)
        die("session_remove_expired");
    check_created(ids, nids, scratch, "after session_remove_expired");
    char *got = session_get(id);
    if (got == NULL || !payload_valid(got, scratch))
        die("the updated session did not survive session_remove_expired");
    free(got);

    for (int i = 0; i < nids; i++) {
        if (!session_destroy(ids[i]))
            die("session_destroy");
        free(ids[i]);
    }
    free(ids);
    if (!session_destroy(id))
        die("session_destroy");
    free(id);
    free(buf);
    free(scratch);
    session_shutdown();
    printf("crash_test: all rounds passed\n");
    return 0;
}
