/*
 * threads.c - libsession under concurrent use from many threads.
 *
 * Usage: threads [THREADS=8] [OPS_PER_THREAD=10000] [CONFIG_JSON]
 *   CONFIG_JSON, if given, is passed to session_init_json, for example
 *   '{"sessions": {"driver": "memory"}}'. Without it the embedded default is
 *   used (file driver in ./sessions).
 *
 * Each thread runs a random mix of create/get/update/destroy on its own
 * sessions and checks every answer: a get returns exactly what the thread last
 * wrote; after a destroy, update returns 0 and get returns NULL, both with
 * SESSION_ERROR_NOT_FOUND. Prints ops/s. Exits 0 only with no error and no
 * lost session.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "session.h"

#define MAX_LIVE 64
#define MAX_PAYLOAD 4096

typedef struct {
    char *id;          /* malloc'd by session_create */
    unsigned long seq; /* the version last written; the payload derives from it */
} live_t;

typedef struct {
    int index;
    long ops;
    long done;         /* operations performed */
    long errors;
    long lost;         /* sessions that vanished while they should live */
    long created, updated, read, destroyed;
    pthread_t thread;
} worker_t;

/* The payload of version `seq` of a session of thread `t`: JSON-like text whose
   length varies with seq, fully determined by (t, seq). */
static size_t make_payload(char *buf, int t, unsigned long seq)
{
    int n = snprintf(buf, MAX_PAYLOAD, "{\"thread\":%d,\"seq\":%lu,\"pad\":\"", t, seq);
    size_t len = (size_t)n;
    size_t pad = (seq * 7919u) % 1500u;
    for (size_t i = 0; i < pad; i++)
        buf[len++] = (char)('a' + (seq + i) % 26);
    memcpy(buf + len, "\"}", 3);
    return len + 2;
}

static void report(worker_t *w, const char *what, const char *id)
{
    int code = session_last_error_code();
    const char *msg = session_last_error();
    fprintf(stderr, "thread %d: %s (id %.16s...): code %d: %s\n", w->index, what,
            id ? id : "-", code, msg ? msg : "(no message)");
}

/* Reads a live session and compares it with what was last written. */
static void check_get(worker_t *w, live_t *s, char *expected)
{
    char *got = session_get(s->id);
    w->read++;
    w->done++;
    if (got == NULL) {
        if (session_last_error_code() == SESSION_ERROR_NOT_FOUND) {
            w->lost++;
            report(w, "live session lost", s->id);
        } else {
            w->errors++;
            report(w, "session_get failed", s->id);
        }
        return;
    }
    make_payload(expected, w->index, s->seq);
    if (strcmp(got, expected) != 0) {
        w->errors++;
        fprintf(stderr, "thread %d: session %.16s... holds %.60s..., expected %.60s...\n",
                w->index, s->id, got, expected);
    }
    free(got);
}

static void *run(void *arg)
{
    worker_t *w = arg;
    live_t live[MAX_LIVE];
    int nlive = 0;
    char *buf = malloc(MAX_PAYLOAD);
    char *expected = malloc(MAX_PAYLOAD);
    unsigned int rng = 0x9e3779b9u ^ (unsigned int)w->index * 2654435761u;
    unsigned long seq = 0;

    if (buf == NULL || expected == NULL) {
        w->errors++;
        free(buf);
        free(expected);
        return NULL;
    }
    while (w->done < w->ops) {
        int r = rand_r(&rng) % 100;
        if (nlive == 0 || (r < 25 && nlive < MAX_LIVE)) {
            seq++;
            make_payload(buf, w->index, seq);
            char *id = session_create(buf);
            w->done++;
            if (id == NULL) {
                w->errors++;
                report(w, "session_create failed", NULL);
                continue;
            }
            if (strlen(id) != SESSION_ID_LEN) {
                w->errors++;
                fprintf(stderr, "thread %d: id of %zu characters\n", w->index, strlen(id));
            }
            live[nlive].id = id;
            live[nlive].seq = seq;
            nlive++;
            w->created++;
        } else if (r < 60) {
            check_get(w, &live[rand_r(&rng) % nlive], expected);
        } else if (r < 90) {
            live_t *s = &live[rand_r(&rng) % nlive];
            seq++;
            make_payload(buf, w->index, seq);
            w->done++;
            if (session_update(s->id, buf)) {
                s->seq = seq;
                w->updated++;
            } else if (session_last_error_code() == SESSION_ERROR_NOT_FOUND) {
                w->lost++;
                report(w, "session_update: live session lost", s->id);
            } else {
                w->errors++;
                report(w, "session_update failed", s->id);
            }
        } else {
            int k = rand_r(&rng) % nlive;
            live_t s = live[k];
            live[k] = live[--nlive];
            w->done++;
            if (!session_destroy(s.id)) {
                w->errors++;
                report(w, "session_destroy failed", s.id);
            }
            w->destroyed++;
            /* A destroyed session is never brought back. */
            make_payload(buf, w->index, ++seq);
            w->done++;
            if (session_update(s.id, buf) != 0) {
                w->errors++;
                fprintf(stderr, "thread %d: session_update of a destroyed session succeeded\n", w->index);
            } else if (session_last_error_code() != SESSION_ERROR_NOT_FOUND) {
                w->errors++;
                report(w, "session_update of a destroyed session: wrong code", s.id);
            }
            char *got = session_get(s.id);
            w->done++;
            if (got != NULL) {
                w->errors++;
                fprintf(stderr, "thread %d: session_get of a destroyed session returned data\n", w->index);
                free(got);
            } else if (session_last_error_code() != SESSION_ERROR_NOT_FOUND) {
                w->errors++;
                report(w, "session_get of a destroyed session: wrong code", s.id);
            }
            free(s.id);
        }
    }
    /* Check and destroy what is left. */
    for (int i = 0; i < nlive; i++) {
        check_get(w, &live[i], expected);
        if (!session_destroy(live[i].id)) {
            w->errors++;
            report(w, "final session_destroy failed", live[i].id);
        }
        w->destroyed++;
        free(live[i].id);
    }
    free(buf);
    free(expected);
    return NULL;
}

static long parse_count(const char *text, const char *what)
{
    char *end;
    long n = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || n <= 0 || n > 100000000L) {
        fprintf(stderr, "threads: %s must be a positive integer, not \"%s\"\n", what, text);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    long nthreads = argc > 1 ? parse_count(argv[1], "THREADS") : 8;
    long ops = argc > 2 ? parse_count(argv[2], "OPS_PER_THREAD") : 10000;
    const char *config = argc > 3 ? argv[3] : NULL;

    if (config != NULL) {
        if (!session_init_json(config)) {
            const char *msg = session_last_error();
            fprintf(stderr, "threads: session_init_json: %s\n", msg ? msg : "(no message)");
            return 1;
        }
    }
    printf("threads: %ld threads x %ld operations, store: %s\n", nthreads, ops,
           config ? config : "embedded default (files in ./sessions)");

    worker_t *workers = calloc((size_t)nthreads, sizeof *workers);
    if (workers == NULL) {
        fprintf(stderr, "threads: out of memory\n");
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long started = 0;
    for (long i = 0; i < nthreads; i++) {
        workers[i].index = (int)i;
        workers[i].ops = ops;
        if (pthread_create(&workers[i].thread, NULL, run, &workers[i]) != 0) {
            fprintf(stderr, "threads: pthread_create failed\n");
            break;
        }
        started++;
    }
    long done = 0, errors = 0, lost = 0, created = 0, updated = 0, read = 0, destroyed = 0;
    for (long i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        done += workers[i].done;
        errors += workers[i].errors;
        lost += workers[i].lost;
        created += workers[i].created;
        updated += workers[i].updated;
        read += workers[i].read;
        destroyed += workers[i].destroyed;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (started != nthreads)
        errors++;
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (secs <= 0)
        secs = 1e-9;

    printf("threads: %ld operations in %.3f s: %.0f ops/s\n", done, secs, (double)done / secs);
    printf("threads: created %ld, read %ld, updated %ld, destroyed %ld\n", created, read, updated,
           destroyed);
    if (created != destroyed) {
        fprintf(stderr, "threads: created %ld but destroyed %ld\n", created, destroyed);
        errors++;
    }
    printf("threads: %ld errors, %ld lost sessions\n", errors, lost);

    free(workers);
    session_shutdown();
    return errors == 0 && lost == 0 ? 0 : 1;
}
