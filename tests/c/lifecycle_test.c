/*
 * lifecycle_test.c - the session lifecycle API and store handles of libsession,
 * through include/session.h.
 *
 * Usage: lifecycle_test DIR CONFIG_JSON
 *   DIR          a scratch directory, created if needed: the storage root of the
 *                file store of the named-stores test and a config file go there.
 *   CONFIG_JSON  config.json text whose default store is the store under test
 *                (a single "sessions" object, or a map with a "default" entry):
 *                  {"sessions": {"driver": "memory"}}
 *                  {"sessions": {"driver": "storage", "storage_name": "s"},
 *                   "storages": {"s": {"type": "filesystem", "root": "/tmp/x"}}}
 *                  {"sessions": {"default": {"driver": "redis", "url": "redis://127.0.0.1:6379"}}}
 *                The test adds lifetime, max_lifetime, idle_timeout,
 *                regenerate_grace and max_sessions itself, so CONFIG_JSON must not
 *                set them. A file store's root must exist (libsession creates only
 *                ROOT/sessions): every "root" CONFIG_JSON names is created first.
 *
 * Every new function (session_create_ttl, session_touch, session_ttl,
 * session_exists, session_count, session_remove_expired_count, session_regenerate)
 * is tested twice: on the global API (session_init_json) and on a handle
 * (session_store_open_json). Then: NULL handles and NULL arguments, idle expiry,
 * max_sessions (memory driver), two named stores with different drivers in one
 * process, 1,000 handles opened and closed, and a handle from session_store()
 * outliving session_shutdown().
 *
 * Checks do not stop at the first failure: each failed one is printed, and the
 * program ends with "lifecycle_test: N passed, M failed" and exit status 1 when M
 * is not 0.
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "session.h"

#define TEST_NAME "lifecycle_test"
#include "test_support.h"

/* Settings the test adds to the store under test. */
#define LIFETIME 600
#define MAX_LIFETIME 86400
#define HANDLE_ROUNDS 1000

/* ---- the API under test: the global functions, or a handle ---------------------- */

/* Configures the target from `json`: session_init_json, or a new handle from
   session_store_open_json. Returns 1 on success. */
static int t_open(target_t *t, const char *json)
{
    if (t->global)
        return session_init_json(json) != 0;
    session_store_close(t->h);
    t->h = session_store_open_json(json, NULL);
    return t->h != NULL;
}

static void t_close(target_t *t)
{
    if (!t->global) {
        session_store_close(t->h);
        t->h = NULL;
    }
}

static char *t_create_ttl(const target_t *t, const char *data, long ttl)
{
    return t->global ? session_create_ttl(data, ttl) : session_store_create_ttl(t->h, data, ttl);
}

static long t_count(const target_t *t)
{
    return t->global ? session_count() : session_store_count(t->h);
}

static long t_remove_expired(const target_t *t)
{
    return t->global ? session_remove_expired_count() : session_store_remove_expired(t->h);
}

/* Opens `json` on the target, counting the check; 0 if it failed. */
#define OPEN_OR_RETURN(t, json, what)                                                              \
    do {                                                                                           \
        int ok_ = t_open((t), (json));                                                             \
        CHECK(ok_, what);                                                                          \
        if (!ok_)                                                                                  \
            return;                                                                                \
    } while (0)

/* get(id) returns exactly `want`. */
#define CHECK_DATA(t, id, want, what)                                                              \
    do {                                                                                           \
        char *got_ = t_get((t), (id));                                                             \
        if (got_ == NULL)                                                                          \
            fail_at(__LINE__, "get(id) != NULL", "%s: get returned NULL", what);                  \
        else if (strcmp(got_, (want)) != 0)                                                        \
            fail_at(__LINE__, "data equal", "%s: get returned \"%.80s\", expected \"%.80s\"",     \
                    what, got_, (want));                                                           \
        else                                                                                       \
            passed++;                                                                              \
        free(got_);                                                                                \
    } while (0)

/* The session is not live: get, exists, ttl and touch all say NOT_FOUND. */
static void check_gone(const target_t *t, const char *id, const char *what)
{
    char line[256];
    char *got = t_get(t, id);
    snprintf(line, sizeof line, "%s: get returns NULL", what);
    CHECK(got == NULL, line);
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, line);
    free(got);
    snprintf(line, sizeof line, "%s: exists returns 0", what);
    CHECK(t_exists(t, id) == 0, line);
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, line);
    snprintf(line, sizeof line, "%s: ttl returns -1", what);
    CHECK(t_ttl(t, id) == -1, line);
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, line);
}

/* ---- per-target suites ----------------------------------------------------------- */

static void test_create_ttl(const target_t *t)
{
    suite = "session_create_ttl";
    char *one = t_create_ttl(t, "{\"ttl\":1}", 1);
    CHECK(is_session_id(one), "create_ttl(data, 1) returns an id");
    CHECK_OK("create_ttl(data, 1)");
    CHECK_DATA(t, one, "{\"ttl\":1}", "create_ttl(data, 1) data");
    CHECK(t_ttl(t, one) == 1, "ttl of a create_ttl(1) session is 1");

    char *day = t_create_ttl(t, "{\"ttl\":86400}", MAX_LIFETIME);
    CHECK(is_session_id(day), "create_ttl(data, max_lifetime) returns an id");
    CHECK_RANGE(t_ttl(t, day), MAX_LIFETIME - 1, MAX_LIFETIME, "ttl of a create_ttl(max_lifetime) session");

    char *two_min = t_create_ttl(t, "{\"ttl\":120}", 120);
    CHECK(is_session_id(two_min), "create_ttl(data, 120) returns an id");
    CHECK_RANGE(t_ttl(t, two_min), 119, 120, "ttl of a create_ttl(120) session");

    /* session_create uses lifetime, not max_lifetime. */
    char *plain = t_create(t, "{\"plain\":1}");
    CHECK(is_session_id(plain), "create returns an id");
    CHECK_RANGE(t_ttl(t, plain), LIFETIME - 1, LIFETIME, "ttl of a session_create session is lifetime");

    const long bad[] = {0, -1, MAX_LIFETIME + 1L, LONG_MAX, LONG_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "create_ttl(data, %ld) is refused", bad[i]);
        char *id = t_create_ttl(t, "{\"bad\":1}", bad[i]);
        CHECK(id == NULL, what);
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, what);
        free(id);
    }
    char *null_data = t_create_ttl(t, NULL, 10);
    CHECK(null_data == NULL, "create_ttl(NULL, 10)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "create_ttl(NULL, 10)");
    free(null_data);

    char *ids[] = {one, day, two_min, plain};
    for (size_t i = 0; i < 4; i++) {
        CHECK(ids[i] == NULL || t_destroy(t, ids[i]) != 0, "destroy");
        free(ids[i]);
    }
}

static void test_touch_ttl_exists(const target_t *t)
{
    suite = "touch, ttl, exists";
    char *id = t_create_ttl(t, "{\"touch\":1}", 120);
    CHECK(is_session_id(id), "create_ttl");

    CHECK(t_touch(t, id) != 0, "touch of a live session (no idle_timeout) returns non-zero");
    CHECK_OK("touch of a live session");
    CHECK_RANGE(t_ttl(t, id), 119, 120, "touch does not move the absolute end");
    CHECK_OK("ttl of a live session");
    CHECK(t_exists(t, id) == 1, "exists of a live session is 1");
    CHECK_OK("exists of a live session");
    CHECK_DATA(t, id, "{\"touch\":1}", "touch keeps the data");

    /* A well-formed id that was never stored. */
    char *missing = session_create_id();
    CHECK(is_session_id(missing), "session_create_id");
    CHECK(t_touch(t, missing) == 0, "touch of a missing session returns 0");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "touch of a missing session");
    check_gone(t, missing, "a missing session (touch did not create it)");

    /* A destroyed session. */
    CHECK(t_destroy(t, id) != 0, "destroy");
    CHECK(t_touch(t, id) == 0, "touch of a destroyed session returns 0");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "touch of a destroyed session");
    check_gone(t, id, "a destroyed session (touch did not bring it back)");

    /* NULL and malformed ids. */
    char upper[SESSION_ID_LEN + 1];
    memset(upper, 'A', SESSION_ID_LEN);
    upper[SESSION_ID_LEN] = '\0';
    const char *malformed[] = {"", "abc", "../../etc/passwd", upper};
    CHECK(t_touch(t, NULL) == 0, "touch(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "touch(NULL)");
    CHECK(t_ttl(t, NULL) == -1, "ttl(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "ttl(NULL)");
    CHECK(t_exists(t, NULL) == 0, "exists(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "exists(NULL)");
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        CHECK(t_touch(t, malformed[i]) == 0, "touch(malformed id)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "touch(malformed id)");
        CHECK(t_ttl(t, malformed[i]) == -1, "ttl(malformed id)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "ttl(malformed id)");
        CHECK(t_exists(t, malformed[i]) == 0, "exists(malformed id)");
        CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "exists(malformed id)");
    }
    free(missing);
    free(id);
}

static void test_count(const target_t *t)
{
    suite = "session_count";
    long c0 = t_count(t);
    CHECK(c0 >= 0, "count");
    CHECK_OK("count");
    char *ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = t_create(t, "{\"count\":1}");
        CHECK(ids[i] != NULL, "create");
    }
    CHECK(t_count(t) == c0 + 3, "count grows by 3 after 3 creates");
    CHECK(ids[0] == NULL || t_destroy(t, ids[0]) != 0, "destroy");
    CHECK(t_count(t) == c0 + 2, "count shrinks by 1 after a destroy");
    CHECK(ids[1] == NULL || t_update(t, ids[1], "{\"count\":2}") != 0, "update");
    CHECK(t_count(t) == c0 + 2, "an update does not change the count");
    for (int i = 1; i < 3; i++)
        CHECK(ids[i] == NULL || t_destroy(t, ids[i]) != 0, "destroy");
    CHECK(t_count(t) == c0, "count is back where it started");
    for (int i = 0; i < 3; i++)
        free(ids[i]);
}

static void test_remove_expired(const target_t *t)
{
    suite = "session_remove_expired_count";
    /* Leftovers of earlier suites (ended old ids of regenerated sessions) go first. */
    long first = t_remove_expired(t);
    CHECK(first >= 0, "remove_expired_count");
    CHECK_OK("remove_expired_count");
    CHECK(t_remove_expired(t) == 0, "remove_expired_count with nothing ended is 0");
    CHECK_OK("remove_expired_count with nothing ended");

    char *live = t_create(t, "{\"live\":1}");
    CHECK(live != NULL, "create");
    char *ending[3];
    for (int i = 0; i < 3; i++) {
        ending[i] = t_create_ttl(t, "{\"ending\":1}", 1);
        CHECK(ending[i] != NULL, "create_ttl(data, 1)");
    }
    long before = t_count(t);
    CHECK(before >= 4, "count with 4 live sessions");

    sleep_until(now_s() + 1.5);

    /* Counted and removed before anything else looks at the ended sessions. */
    CHECK(t_count(t) == before - 3, "ended sessions are not counted");
    long removed = t_remove_expired(t);
    CHECK_OK("remove_expired_count");
    for (int i = 0; i < 3; i++)
        check_gone(t, ending[i], "a create_ttl(1) session after 1.5 s");
    if (driver == DRIVER_REDIS)
        /* Redis expires keys itself: nothing is left for remove_expired to delete. */
        CHECK_RANGE(removed, 0, 3, "remove_expired_count on Redis");
    else
        CHECK(removed == 3, "remove_expired_count returns the 3 ended sessions");
    CHECK(t_remove_expired(t) == 0, "a second remove_expired_count returns 0");
    CHECK_DATA(t, live, "{\"live\":1}", "the live session survives remove_expired_count");
    CHECK(t_count(t) == before - 3, "count after remove_expired_count");
    for (int i = 0; i < 3; i++) {
        CHECK(ending[i] == NULL || t_destroy(t, ending[i]) != 0, "destroy of an ended session");
        free(ending[i]);
    }
    CHECK(live == NULL || t_destroy(t, live) != 0, "destroy");
    free(live);
}

static void test_regenerate(const target_t *t)
{
    suite = "session_regenerate";
    char *old = t_create_ttl(t, "{\"user\":\"regen\"}", 120);
    CHECK(is_session_id(old), "create_ttl");
    long ttl_before = t_ttl(t, old);
    long c0 = t_count(t);

    char *new_id = t_regenerate(t, old);
    CHECK(is_session_id(new_id), "regenerate returns a new id");
    CHECK_OK("regenerate");
    CHECK(!same(new_id, old), "the new id differs from the old one");
    CHECK_DATA(t, new_id, "{\"user\":\"regen\"}", "the new id has the data");
    check_gone(t, old, "the old id after regenerate (no regenerate_grace)");
    CHECK(t_update(t, old, "{\"user\":\"evil\"}") == 0, "update of the old id returns 0");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "update of the old id");
    CHECK(t_touch(t, old) == 0, "touch of the old id returns 0");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "touch of the old id");
    long ttl_after = t_ttl(t, new_id);
    CHECK_RANGE(ttl_after, ttl_before - 1, ttl_before, "the new id keeps the absolute end");
    CHECK(t_count(t) == c0, "regenerate does not change the count");

    char *again = t_regenerate(t, old);
    CHECK(again == NULL, "regenerate of the old id again");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "regenerate of the old id again");
    free(again);

    char *missing = session_create_id();
    char *none = t_regenerate(t, missing);
    CHECK(none == NULL, "regenerate of a missing session");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "regenerate of a missing session");
    check_gone(t, missing, "regenerate did not create the missing session");
    free(none);
    free(missing);

    char *null_id = t_regenerate(t, NULL);
    CHECK(null_id == NULL, "regenerate(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "regenerate(NULL)");
    free(null_id);
    char *bad_id = t_regenerate(t, "0123");
    CHECK(bad_id == NULL, "regenerate(malformed id)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "regenerate(malformed id)");
    free(bad_id);

    CHECK(new_id == NULL || t_update(t, new_id, "{\"user\":\"regen\",\"n\":2}") != 0,
          "update of the new id");
    CHECK_DATA(t, new_id, "{\"user\":\"regen\",\"n\":2}", "the new id after update");
    CHECK(new_id == NULL || t_destroy(t, new_id) != 0, "destroy");
    check_gone(t, new_id, "the new id after destroy");
    free(new_id);
    free(old);
}

/* With regenerate_grace the old id still reads, read-only. */
static void test_regenerate_grace(target_t *t)
{
    suite = "session_regenerate with regenerate_grace";
    char *config = config_with("\"lifetime\": 600, \"regenerate_grace\": 2");
    int ok = t_open(t, config);
    CHECK(ok, "open a store with regenerate_grace 2");
    CHECK_OK("open a store with regenerate_grace 2");
    free(config);
    if (!ok)
        return;

    char *old = t_create(t, "{\"grace\":1}");
    CHECK(is_session_id(old), "create");
    long c0 = t_count(t);
    char *new_id = t_regenerate(t, old);
    CHECK(is_session_id(new_id), "regenerate");
    CHECK(!same(new_id, old), "the new id differs");
    CHECK_DATA(t, new_id, "{\"grace\":1}", "the new id has the data");
    CHECK_DATA(t, old, "{\"grace\":1}", "the old id still reads during regenerate_grace");
    CHECK(t_update(t, old, "{\"grace\":\"evil\"}") == 0,
          "update of the old id during regenerate_grace returns 0");
    CHECK_FAILED("update of the old id during regenerate_grace");
    CHECK_DATA(t, new_id, "{\"grace\":1}", "the refused update changed nothing (new id)");
    CHECK_DATA(t, old, "{\"grace\":1}", "the refused update changed nothing (old id)");
    CHECK(t_count(t) == c0 + 1, "old ids within their regenerate_grace count too");
    CHECK(new_id == NULL || t_update(t, new_id, "{\"grace\":2}") != 0, "update of the new id");
    CHECK_DATA(t, new_id, "{\"grace\":2}", "the new id after update");
    CHECK(new_id == NULL || t_destroy(t, new_id) != 0, "destroy");
    free(new_id);
    free(old); /* the old id ends with its grace, 2 s from now */
}

/* idle_timeout 1 s, lifetime 3 s: a used session outlives 1.5 s, an unused one
   ends after 1 s, and none outlives its absolute end. */
static void test_idle(target_t *t)
{
    suite = "idle_timeout";
    char *config = config_with("\"lifetime\": 3, \"idle_timeout\": 1, \"regenerate_grace\": 1");
    int ok = t_open(t, config);
    CHECK(ok, "open a store with idle_timeout 1, lifetime 3");
    free(config);
    if (!ok)
        return;

    double t0 = now_s();
    char *touched = t_create(t, "{\"idle\":\"touched\"}");
    char *untouched = t_create(t, "{\"idle\":\"untouched\"}");
    char *updated = t_create(t, "{\"idle\":\"updated\"}");
    char *read = t_create(t, "{\"idle\":\"read\"}");
    char *regen_old = t_create(t, "{\"idle\":\"regen\"}");
    CHECK(touched && untouched && updated && read && regen_old, "create 5 sessions");
    double created = now_s();
    CHECK(t_ttl(t, touched) == 1, "ttl is the idle end (1 s), not the absolute end (3 s)");
    char *regen = t_regenerate(t, regen_old);
    CHECK(is_session_id(regen), "regenerate");
    CHECK_DATA(t, regen_old, "{\"idle\":\"regen\"}", "the old id reads during its 1 s grace");

    /* Every 0.25 s: touch, update, get or touch (regenerated) four of them; look at
       the untouched one only with ttl and exists, which do not move the idle end. */
    char data[64];
    int step = 1;
    for (; t0 + 0.25 * step < t0 + 2.8; step++) {
        sleep_until(t0 + 0.25 * step);
        double at = now_s() - t0;
        char what[128];
        snprintf(what, sizeof what, "touch of a used session at %.2f s", at);
        CHECK(touched == NULL || t_touch(t, touched) != 0, what);
        snprintf(data, sizeof data, "{\"idle\":\"updated\",\"step\":%d}", step);
        snprintf(what, sizeof what, "update of a used session at %.2f s", at);
        CHECK(updated == NULL || t_update(t, updated, data) != 0, what);
        char *got = t_get(t, read);
        snprintf(what, sizeof what, "get of a used session at %.2f s", at);
        CHECK(same(got, "{\"idle\":\"read\"}"), what);
        free(got);
        snprintf(what, sizeof what, "touch of a regenerated session at %.2f s", at);
        CHECK(regen == NULL || t_touch(t, regen) != 0, what);
        if (at < 0.9) {
            snprintf(what, sizeof what, "exists of the unused session at %.2f s", at);
            CHECK(t_exists(t, untouched) == 1, what);
            snprintf(what, sizeof what, "ttl of the unused session at %.2f s", at);
            CHECK(t_ttl(t, untouched) == 1, what);
        }
        if (step == 6) { /* 1.5 s: the unused session ended at 1 s */
            snprintf(what, sizeof what, "the unused session at %.2f s (idle end at 1 s)", at);
            check_gone(t, untouched, what);
            CHECK(t_touch(t, untouched) == 0, "touch of an idle-ended session returns 0");
            CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "touch of an idle-ended session");
            CHECK(t_update(t, untouched, "{\"back\":1}") == 0, "update of an idle-ended session");
            CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "update of an idle-ended session");
            check_gone(t, untouched, "an idle-ended session is not brought back");
            snprintf(what, sizeof what, "the old id at %.2f s (grace of 1 s over)", at);
            check_gone(t, regen_old, what);
            snprintf(what, sizeof what, "a touched session outlives 1.5 s (at %.2f s)", at);
            CHECK(t_exists(t, touched) == 1, what);
            CHECK(t_ttl(t, touched) == 1, "ttl of a touched session is its idle end, 1 s");
            CHECK_DATA(t, touched, "{\"idle\":\"touched\"}", "the touched session's data");
            CHECK_DATA(t, updated, data, "an updated session outlives 1.5 s");
            CHECK_DATA(t, regen, "{\"idle\":\"regen\"}", "a touched regenerated session outlives 1.5 s");
        }
    }
    /* Just before the absolute end (3 s after creation): still there, ending soon. */
    CHECK(t_ttl(t, touched) == 1, "ttl just before the absolute end");
    CHECK(t_exists(t, touched) == 1, "the touched session is live at 2.75 s");

    /* 3.3 s: past the absolute end, whatever the touches. */
    sleep_until(created + 3.3);
    char what[128];
    snprintf(what, sizeof what, "touched session at %.2f s (absolute end at 3 s)", now_s() - t0);
    CHECK(touched == NULL || t_touch(t, touched) == 0, what);
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, what);
    check_gone(t, touched, "no session outlives its absolute end (touched)");
    check_gone(t, updated, "no session outlives its absolute end (updated)");
    check_gone(t, read, "no session outlives its absolute end (read)");
    check_gone(t, regen, "no session outlives its absolute end (regenerated)");

    char *all[] = {touched, untouched, updated, read, regen_old, regen};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK(all[i] == NULL || t_destroy(t, all[i]) != 0, "destroy of an ended session");
        free(all[i]);
    }
}

/* max_sessions: the memory driver refuses a create beyond it with
   SESSION_ERROR_FULL; the other drivers refuse the key. */
static void test_full(target_t *t)
{
    suite = "max_sessions";
    char *config = config_with("\"lifetime\": 600, \"max_sessions\": 3");
    int ok = t_open(t, config);
    free(config);
    if (driver != DRIVER_MEMORY) {
        CHECK(!ok, "max_sessions is refused by a driver other than memory");
        CHECK_ERROR(SESSION_ERROR_CONFIG, "max_sessions on a driver other than memory");
        CHECK_MESSAGE("max_sessions", "max_sessions on a driver other than memory");
        return;
    }
    CHECK(ok, "open a memory store with max_sessions 3");
    if (!ok)
        return;
    char *a = t_create(t, "{\"full\":\"a\"}");
    char *b = t_create(t, "{\"full\":\"b\"}");
    char *c = t_create_ttl(t, "{\"full\":\"c\"}", 1);
    CHECK(a && b && c, "3 creates with max_sessions 3");
    CHECK(t_count(t) == 3, "count is 3");
    char *d = t_create(t, "{\"full\":\"d\"}");
    CHECK(d == NULL, "a 4th create with max_sessions 3 returns NULL");
    CHECK_ERROR(SESSION_ERROR_FULL, "a 4th create with max_sessions 3");
    free(d);
    d = t_create_ttl(t, "{\"full\":\"d\"}", 10);
    CHECK(d == NULL, "a 4th create_ttl with max_sessions 3 returns NULL");
    CHECK_ERROR(SESSION_ERROR_FULL, "a 4th create_ttl with max_sessions 3");
    free(d);
    CHECK_DATA(t, a, "{\"full\":\"a\"}", "a full store still reads");
    CHECK(a == NULL || t_update(t, a, "{\"full\":\"a2\"}") != 0, "a full store still updates");

    CHECK(a == NULL || t_destroy(t, a) != 0, "destroy");
    char *e = t_create(t, "{\"full\":\"e\"}");
    CHECK(e != NULL, "a destroy makes room for a create");
    d = t_create(t, "{\"full\":\"d\"}");
    CHECK(d == NULL, "full again");
    CHECK_ERROR(SESSION_ERROR_FULL, "full again");
    free(d);

    sleep_until(now_s() + 1.3); /* c ends: an ended session takes no room */
    d = t_create(t, "{\"full\":\"d\"}");
    CHECK(d != NULL, "an ended session makes room for a create");
    CHECK_OK("create after a session ended");
    char *f = t_create(t, "{\"full\":\"f\"}");
    CHECK(f == NULL, "full again after the ended session was replaced");
    CHECK_ERROR(SESSION_ERROR_FULL, "full again after the ended session was replaced");
    char *all[] = {a, b, c, d, e, f};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK(all[i] == NULL || t_destroy(t, all[i]) != 0, "destroy");
        free(all[i]);
    }
}

/* NULL arguments to every function of the target (NULL store excepted). */
static void test_null_arguments(const target_t *t)
{
    suite = "NULL arguments";
    char *id = t_create(t, "{\"null\":1}");
    CHECK(id != NULL, "create");
    char *r;
    r = t_create(t, NULL);
    CHECK(r == NULL, "create(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "create(NULL)");
    free(r);
    r = t_create_ttl(t, NULL, 60);
    CHECK(r == NULL, "create_ttl(NULL, 60)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "create_ttl(NULL, 60)");
    free(r);
    r = t_get(t, NULL);
    CHECK(r == NULL, "get(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "get(NULL)");
    free(r);
    CHECK(t_update(t, NULL, "{}") == 0, "update(NULL, data)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "update(NULL, data)");
    CHECK(t_update(t, id, NULL) == 0, "update(id, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "update(id, NULL)");
    CHECK(t_destroy(t, NULL) == 0, "destroy(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "destroy(NULL)");
    CHECK(t_touch(t, NULL) == 0, "touch(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "touch(NULL)");
    CHECK(t_ttl(t, NULL) == -1, "ttl(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "ttl(NULL)");
    CHECK(t_exists(t, NULL) == 0, "exists(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "exists(NULL)");
    r = t_regenerate(t, NULL);
    CHECK(r == NULL, "regenerate(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "regenerate(NULL)");
    free(r);
    CHECK_DATA(t, id, "{\"null\":1}", "the session is intact after the NULL calls");
    CHECK(id == NULL || t_destroy(t, id) != 0, "destroy");
    free(id);
}

static void run_target(target_t *t)
{
    scope = t->name;
    suite = "open";
    printf("lifecycle_test: %s driver, %s API\n", driver_name(), t->name);
    fflush(stdout);
    char *basic = config_with("\"lifetime\": 600, \"max_lifetime\": 86400");
    int ok = t_open(t, basic);
    CHECK(ok, "open the store under test");
    CHECK_OK("open the store under test");
    if (ok) {
        test_create_ttl(t);
        test_touch_ttl_exists(t);
        test_count(t);
        test_remove_expired(t);
        test_regenerate(t);
        test_null_arguments(t);
        test_regenerate_grace(t);
        test_idle(t);
        test_full(t);
    }
    free(basic);
    t_close(t);
    printf("lifecycle_test: %s API done (%d passed, %d failed so far)\n", t->name, passed, failed);
    fflush(stdout);
}

/* ---- handles --------------------------------------------------------------------- */

/* Every session_store_* function with a NULL handle, and bad session_store_open*
   arguments. */
static void test_null_handle(const char *dir)
{
    scope = "handles";
    suite = "NULL handle";
    char *id = session_create_id();
    char *r;
    r = session_store_create(NULL, "{}");
    CHECK(r == NULL, "session_store_create(NULL, data)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_create(NULL, data)");
    free(r);
    r = session_store_create_ttl(NULL, "{}", 60);
    CHECK(r == NULL, "session_store_create_ttl(NULL, data, 60)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_create_ttl(NULL, ...)");
    free(r);
    r = session_store_get(NULL, id);
    CHECK(r == NULL, "session_store_get(NULL, id)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_get(NULL, id)");
    free(r);
    CHECK(session_store_update(NULL, id, "{}") == 0, "session_store_update(NULL, id, data)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_update(NULL, ...)");
    CHECK(session_store_destroy(NULL, id) == 0, "session_store_destroy(NULL, id)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_destroy(NULL, id)");
    CHECK(session_store_remove_expired(NULL) == -1, "session_store_remove_expired(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_remove_expired(NULL)");
    CHECK(session_store_touch(NULL, id) == 0, "session_store_touch(NULL, id)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_touch(NULL, id)");
    CHECK(session_store_ttl(NULL, id) == -1, "session_store_ttl(NULL, id)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_ttl(NULL, id)");
    CHECK(session_store_exists(NULL, id) == 0, "session_store_exists(NULL, id)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_exists(NULL, id)");
    CHECK(session_store_count(NULL) == -1, "session_store_count(NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_count(NULL)");
    r = session_store_regenerate(NULL, id);
    CHECK(r == NULL, "session_store_regenerate(NULL, id)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_regenerate(NULL, id)");
    free(r);
    /* NULL handle and NULL arguments at once. */
    r = session_store_get(NULL, NULL);
    CHECK(r == NULL, "session_store_get(NULL, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_get(NULL, NULL)");
    free(r);
    CHECK(session_store_update(NULL, NULL, NULL) == 0, "session_store_update(NULL, NULL, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_update(NULL, NULL, NULL)");
    /* Ignored, and it leaves the last error (of the NULL update above) alone. */
    session_store_close(NULL);
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_close(NULL) keeps the last error");
    free(id);

    suite = "session_store_open arguments";
    session_store_t *h;
    h = session_store_open(NULL, NULL);
    CHECK(h == NULL, "session_store_open(NULL, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_open(NULL, NULL)");
    session_store_close(h);
    h = session_store_open_json(NULL, NULL);
    CHECK(h == NULL, "session_store_open_json(NULL, NULL)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_open_json(NULL, NULL)");
    session_store_close(h);
    h = session_store_open_json(NULL, "web");
    CHECK(h == NULL, "session_store_open_json(NULL, name)");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "session_store_open_json(NULL, name)");
    session_store_close(h);
    h = session_store_open_json("not json", NULL);
    CHECK(h == NULL, "session_store_open_json(not JSON)");
    CHECK_ERROR(SESSION_ERROR_CONFIG, "session_store_open_json(not JSON)");
    session_store_close(h);
    h = session_store_open_json("{\"sessions\": {\"driver\": \"memory\", \"lifetime\": 0}}", NULL);
    CHECK(h == NULL, "session_store_open_json with lifetime 0");
    CHECK_ERROR(SESSION_ERROR_CONFIG, "session_store_open_json with lifetime 0");
    CHECK_MESSAGE("sessions.lifetime", "session_store_open_json with lifetime 0");
    session_store_close(h);
    h = session_store_open_json("{\"sessions\": {\"driver\": \"memory\"}}", "nosuchstore");
    CHECK(h == NULL, "session_store_open_json of a store the config does not have");
    CHECK_FAILED("session_store_open_json of a missing store");
    CHECK_MESSAGE("nosuchstore", "session_store_open_json of a missing store");
    session_store_close(h);
    h = session_store_open("/nonexistent/libsession/config.json", NULL);
    CHECK(h == NULL, "session_store_open of a missing file");
    CHECK_ERROR(SESSION_ERROR_CONFIG, "session_store_open of a missing file");
    CHECK_MESSAGE("/nonexistent/libsession/config.json", "session_store_open of a missing file");
    session_store_close(h);

    /* session_store_open of a real config file, by name and by default. */
    char path[4200];
    snprintf(path, sizeof path, "%s/lifecycle-config.json", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        die("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "{\"sessions\": {\"default\": {\"driver\": \"memory\"}, "
               "\"short\": {\"driver\": \"memory\", \"lifetime\": 60}}}\n");
    fclose(f);
    const char *names[] = {NULL, "default", "short"};
    const long lifetimes[] = {3600, 3600, 60};
    for (int i = 0; i < 3; i++) {
        h = session_store_open(path, names[i]);
        CHECK(h != NULL, "session_store_open of a config file");
        CHECK_OK("session_store_open of a config file");
        char *sid = session_store_create(h, "{\"from\":\"file\"}");
        CHECK(sid != NULL, "session_store_create on an opened file config");
        CHECK_RANGE(session_store_ttl(h, sid), lifetimes[i] - 1, lifetimes[i],
                    "the named store has its own lifetime");
        char *got = session_store_get(h, sid);
        CHECK(same(got, "{\"from\":\"file\"}"), "session_store_get on an opened file config");
        free(got);
        free(sid);
        session_store_close(h);
        CHECK_OK("session_store_close");
    }
    h = session_store_open(path, "nosuchstore");
    CHECK(h == NULL, "session_store_open of a store the file does not have");
    CHECK_MESSAGE("nosuchstore", "session_store_open of a missing store");
    session_store_close(h);
}

/* Handles on the store under test: independence of memory stores, and 1,000
   handles opened and closed (valgrind must find no leak). */
static void test_handles(void)
{
    scope = "handles";
    suite = "independent handles";
    char *config = config_with("\"lifetime\": 600");
    session_store_t *h1 = session_store_open_json(config, NULL);
    session_store_t *h2 = session_store_open_json(config, NULL);
    CHECK(h1 != NULL && h2 != NULL && h1 != h2, "two handles on one config");
    if (h1 != NULL && h2 != NULL) {
        char *id = session_store_create(h1, "{\"handle\":1}");
        CHECK(id != NULL, "create on the first handle");
        char *got = session_store_get(h2, id);
        if (driver == DRIVER_MEMORY) {
            /* Two session_store_open_json calls make two memory stores. */
            CHECK(got == NULL, "a memory store opened twice is two stores");
            CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "a memory store opened twice is two stores");
        } else {
            /* Files and Redis: both handles reach the same sessions. */
            CHECK(same(got, "{\"handle\":1}"), "two handles on one store share its sessions");
        }
        free(got);
        session_store_close(h2);
        h2 = NULL;
        /* Closing one handle leaves the other working. */
        got = session_store_get(h1, id);
        CHECK(same(got, "{\"handle\":1}"), "a handle works after another was closed");
        free(got);
        CHECK(id == NULL || session_store_destroy(h1, id) != 0, "destroy");
        free(id);
    }
    session_store_close(h1);
    session_store_close(h2);

    suite = "1,000 handles";
    int ok = 0;
    long base_count = -1;
    session_store_t *counter = session_store_open_json(config, NULL);
    CHECK(counter != NULL, "open a handle to count");
    if (counter != NULL)
        base_count = session_store_count(counter);
    for (int i = 0; i < HANDLE_ROUNDS; i++) {
        char data[64];
        snprintf(data, sizeof data, "{\"round\":%d}", i);
        session_store_t *h = session_store_open_json(config, NULL);
        char *id = h ? session_store_create(h, data) : NULL;
        char *got = id ? session_store_get(h, id) : NULL;
        int destroyed = id ? session_store_destroy(h, id) : 0;
        if (h != NULL && id != NULL && same(got, data) && destroyed)
            ok++;
        else if (ok == i) /* report the first failing round */
            fail_at(__LINE__, "open_json + create + get + destroy", "round %d failed", i);
        free(got);
        free(id);
        session_store_close(h);
    }
    CHECK(ok == HANDLE_ROUNDS, "1,000 rounds of open_json + create + get + destroy + close");
    if (counter != NULL) {
        CHECK(session_store_count(counter) == (driver == DRIVER_MEMORY ? 0 : base_count),
              "the 1,000 rounds left no session behind");
        session_store_close(counter);
    }
    free(config);
}

/* Named stores with different drivers in one process: {"web": files, "api":
   memory, "default": memory}. */
static void test_named_stores(const char *dir)
{
    scope = "named stores";
    suite = "web (file) and api (memory)";
    printf("lifecycle_test: named stores\n");
    fflush(stdout);
    char root[4200], two[8800], config[8800];
    snprintf(root, sizeof root, "%s/web-root", dir);
    mkdir_p(root); /* a storage root must exist */
#define WEB_AND_API                                                                                \
    "\"web\": {\"driver\": \"storage\", \"storage_name\": \"webfiles\", \"lifetime\": 600}, "       \
    "\"api\": {\"driver\": \"memory\", \"lifetime\": 60}"
#define WEB_STORAGE "\"storages\": {\"webfiles\": {\"type\": \"filesystem\", \"root\": \"%s\"}}"
    snprintf(two, sizeof two, "{\"sessions\": {" WEB_AND_API "}, " WEB_STORAGE "}", root);
    snprintf(config, sizeof config,
             "{\"sessions\": {" WEB_AND_API ", \"default\": {\"driver\": \"memory\"}}, " WEB_STORAGE "}",
             root);

    /* Two stores and none named "default": the global configuration would have no
       default store (README: "several entries and none named \"default\" is a
       config error"), so session_init refuses it, naming what is missing. */
    CHECK(session_init_json(two) == 0, "session_init_json of {web, api} without a default store");
    CHECK_ERROR(SESSION_ERROR_CONFIG, "session_init_json of {web, api} without a default store");
    CHECK_MESSAGE("default", "session_init_json of {web, api} without a default store");

    int ok = session_init_json(config);
    CHECK(ok, "session_init_json of {web: file store, api: memory store, default: memory}");
    CHECK_OK("session_init_json of named stores");
    if (!ok)
        return;
    session_store_t *web = session_store("web");
    CHECK(web != NULL, "session_store(\"web\")");
    session_store_t *api = session_store("api");
    CHECK(api != NULL, "session_store(\"api\")");
    session_store_t *none = session_store("nosuchstore");
    CHECK(none == NULL, "session_store(\"nosuchstore\")");
    CHECK_FAILED("session_store(\"nosuchstore\")");
    CHECK_MESSAGE("nosuchstore", "session_store(\"nosuchstore\")");
    session_store_close(none);
    if (web == NULL || api == NULL) {
        session_store_close(web);
        session_store_close(api);
        session_shutdown();
        return;
    }

    long web0 = session_store_count(web), api0 = session_store_count(api);
    CHECK(web0 >= 0 && api0 == 0, "counts of the new stores");
    char *w = session_store_create(web, "{\"store\":\"web\"}");
    char *a1 = session_store_create(api, "{\"store\":\"api\",\"n\":1}");
    char *a2 = session_store_create(api, "{\"store\":\"api\",\"n\":2}");
    CHECK(w && a1 && a2, "create in each store");
    CHECK(session_store_count(web) == web0 + 1, "session_count of web");
    CHECK(session_store_count(api) == api0 + 2, "session_count of api");
    CHECK_RANGE(session_store_ttl(web, w), 599, 600, "web has its own lifetime");
    CHECK_RANGE(session_store_ttl(api, a1), 59, 60, "api has its own lifetime");

    char *got = session_store_get(web, w);
    CHECK(same(got, "{\"store\":\"web\"}"), "web reads its session");
    free(got);
    got = session_store_get(api, a1);
    CHECK(same(got, "{\"store\":\"api\",\"n\":1}"), "api reads its session");
    free(got);

    /* Data created in one store is not in the other. */
    got = session_store_get(api, w);
    CHECK(got == NULL, "the web session is not in api");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "the web session is not in api");
    free(got);
    got = session_store_get(web, a1);
    CHECK(got == NULL, "the api session is not in web");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "the api session is not in web");
    free(got);
    CHECK(session_store_exists(api, w) == 0, "exists of the web session in api");
    CHECK(session_store_exists(web, a1) == 0, "exists of the api session in web");
    CHECK(session_store_ttl(api, w) == -1, "ttl of the web session in api");
    CHECK(session_store_touch(web, a1) == 0, "touch of the api session in web");
    CHECK(session_store_update(web, a1, "{\"store\":\"evil\"}") == 0,
          "update of the api session in web");
    CHECK_ERROR(SESSION_ERROR_NOT_FOUND, "update of the api session in web");
    char *r = session_store_regenerate(web, a1);
    CHECK(r == NULL, "regenerate of the api session in web");
    free(r);
    /* The default store is a third one. */
    char *d = session_create("{\"store\":\"default\"}");
    CHECK(d != NULL, "session_create in the default store");
    got = session_store_get(web, d);
    CHECK(got == NULL, "the default store's session is not in web");
    free(got);
    got = session_store_get(api, d);
    CHECK(got == NULL, "the default store's session is not in api");
    free(got);
    got = session_get(a1);
    CHECK(got == NULL, "the api session is not in the default store");
    free(got);
    CHECK(session_count() == 1, "session_count of the default store");
    CHECK(d == NULL || session_destroy(d) != 0, "destroy in the default store");
    free(d);

    CHECK(session_store_destroy(web, a1) != 0, "destroy of the api session in web (already gone)");
    got = session_store_get(api, a1);
    CHECK(same(got, "{\"store\":\"api\",\"n\":1}"), "a destroy in web left the api session alone");
    free(got);

    /* The web sessions are files under its root; the api ones are not. */
    char path[4400];
    struct stat st;
    snprintf(path, sizeof path, "%s/sessions/%s", root, w ? w : "x");
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode), "the web session is a file under web's root");
    snprintf(path, sizeof path, "%s/sessions/%s", root, a1 ? a1 : "x");
    CHECK(stat(path, &st) != 0, "the api session is not a file");

    /* session_store_open_json of the same config: a new api memory store (empty),
       the same web directory. */
    session_store_t *api2 = session_store_open_json(config, "api");
    session_store_t *web2 = session_store_open_json(config, "web");
    CHECK(api2 != NULL && web2 != NULL, "session_store_open_json of each named store");
    if (api2 != NULL && web2 != NULL) {
        CHECK(session_store_count(api2) == 0, "a memory store opened apart is a new store");
        got = session_store_get(api2, a1);
        CHECK(got == NULL, "a memory store opened apart does not see the global one");
        free(got);
        got = session_store_get(web2, w);
        CHECK(same(got, "{\"store\":\"web\"}"), "a file store opened apart sees the same files");
        free(got);
    }
    session_store_close(api2);
    session_store_close(web2);

    /* The handles keep their stores after session_shutdown (the memory store
       included: its sessions are still there). */
    suite = "handles after session_shutdown";
    session_shutdown();
    got = session_store_get(web, w);
    CHECK(same(got, "{\"store\":\"web\"}"), "web handle reads after session_shutdown");
    free(got);
    got = session_store_get(api, a2);
    CHECK(same(got, "{\"store\":\"api\",\"n\":2}"), "api handle reads after session_shutdown");
    free(got);
    char *a3 = session_store_create(api, "{\"store\":\"api\",\"n\":3}");
    CHECK(a3 != NULL, "api handle creates after session_shutdown");
    CHECK(session_store_count(api) == api0 + 3, "session_count of api after session_shutdown");
    CHECK(session_store_exists(api, a3) == 1, "exists after session_shutdown");
    CHECK(session_store_touch(api, a3) != 0, "touch after session_shutdown");
    CHECK_RANGE(session_store_ttl(api, a3), 59, 60, "ttl after session_shutdown");

    char *ids[] = {a1, a2, a3};
    for (int i = 0; i < 3; i++) {
        CHECK(ids[i] == NULL || session_store_destroy(api, ids[i]) != 0, "destroy in api");
        free(ids[i]);
    }
    CHECK(session_store_count(api) == 0, "api is empty");
    CHECK(w == NULL || session_store_destroy(web, w) != 0, "destroy in web");
    CHECK(session_store_count(web) == web0, "web is back to where it started");
    free(w);
    session_store_close(web);
    session_store_close(api);
}

/* session_store(NULL): a handle on the global default store, sharing its
   sessions, still working after session_shutdown. */
static void test_global_handle(void)
{
    scope = "global handle";
    suite = "session_store(NULL) and session_shutdown";
    char *config = config_with("\"lifetime\": 600");
    int ok = session_init_json(config);
    free(config);
    CHECK(ok, "session_init_json");
    if (!ok)
        return;
    session_store_t *h = session_store(NULL);
    CHECK(h != NULL, "session_store(NULL)");
    CHECK_OK("session_store(NULL)");
    if (h == NULL) {
        session_shutdown();
        return;
    }
    session_store_t *by_name = session_store("default");
    CHECK(by_name != NULL, "session_store(\"default\")");
    session_store_close(by_name);

    char *id = session_create("{\"global\":1}");
    CHECK(id != NULL, "session_create");
    char *got = session_store_get(h, id);
    CHECK(same(got, "{\"global\":1}"), "the handle sees the sessions of the global API");
    free(got);
    long c0 = session_store_count(h);
    CHECK(c0 == session_count(), "session_store_count(handle) == session_count()");

    session_shutdown();
    CHECK_OK("session_shutdown");
    got = session_store_get(h, id);
    CHECK(same(got, "{\"global\":1}"), "the handle still reads after session_shutdown");
    free(got);
    char *id2 = session_store_create(h, "{\"global\":2}");
    CHECK(id2 != NULL, "the handle still creates after session_shutdown");
    CHECK(id == NULL || session_store_update(h, id, "{\"global\":3}") != 0,
          "the handle still updates after session_shutdown");
    CHECK(session_store_count(h) == c0 + 1, "the handle still counts after session_shutdown");
    char *id3 = id2 ? session_store_regenerate(h, id2) : NULL;
    CHECK(id3 != NULL, "the handle still regenerates after session_shutdown");
    CHECK(session_store_remove_expired(h) >= 0, "the handle still removes expired sessions");
    CHECK(id == NULL || session_store_destroy(h, id) != 0, "destroy");
    CHECK(id3 == NULL || session_store_destroy(h, id3) != 0, "destroy");
    free(id);
    free(id2);
    free(id3);
    session_store_close(h);
    CHECK_OK("session_store_close");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: lifecycle_test DIR CONFIG_JSON\n");
        return 2;
    }
    const char *dir = argv[1];
    base_config = argv[2];
    if (strlen(dir) > 3000)
        die("DIR is too long");
    const char *reserved[] = {"\"lifetime\"", "\"max_lifetime\"", "\"idle_timeout\"",
                              "\"regenerate_grace\"", "\"max_sessions\""};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strstr(base_config, reserved[i]) != NULL)
            die("CONFIG_JSON must not set %s: the test sets it", reserved[i]);
    mkdir_p(dir);
    create_roots(base_config);
    driver = driver_of(base_config);
    printf("lifecycle_test: %s driver, config %s\n", driver_name(), base_config);

    target_t global = {"global", 1, NULL};
    target_t handle = {"handle", 0, NULL};
    run_target(&global);
    session_shutdown();
    run_target(&handle);

    test_null_handle(dir);
    test_handles();
    test_named_stores(dir);
    test_global_handle();

    session_shutdown();
    return summary();
}
