/*
 * cache_test.c - the Redis driver's local read cache through the C API.
 *
 * Usage: cache_test REDIS_URL
 *
 * Opens the default store on REDIS_URL with "local_cache" and a second store (a
 * handle) on the same server without it; checks that gets are answered from the
 * cache (session_cache_stats), that a write through the other store is seen, that
 * session_store_cache_stats refuses NULL and a store without a cache with
 * SESSION_ERROR_INVALID_ARGUMENT, and that every returned string is plain
 * malloc'd memory (freed with free()). Prints "cache_test: N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#define TEST_NAME "cache_test"

#include "test_support.h"

/* The number after "\"name\":" in the JSON `stats`, or -1. */
static long stat_of(const char *stats, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = stats ? strstr(stats, key) : NULL;
    return at ? strtol(at + strlen(key), NULL, 10) : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: cache_test REDIS_URL");
    char config[512], plain[512];
    snprintf(config, sizeof config,
             "{\"sessions\": {\"driver\": \"redis\", \"url\": \"%s\", \"lifetime\": 3600,"
             " \"local_cache\": {\"max_entries\": 100}}}",
             argv[1]);
    snprintf(plain, sizeof plain,
             "{\"sessions\": {\"driver\": \"redis\", \"url\": \"%s\", \"lifetime\": 3600}}", argv[1]);

    suite = "init";
    CHECK(session_init_json(config) == 1, "init with local_cache");
    session_store_t *other = session_store_open_json(plain, NULL);
    CHECK(other != NULL, "a store without the cache");

    suite = "hits";
    char *id = session_create("{\"n\":1}");
    CHECK(id != NULL, "create");
    long hits = -1;
    for (int i = 0; i < 100 && hits < 3; i++) {
        char *data = session_get(id);
        CHECK_STR(data, "{\"n\":1}", "get");
        free(data);
        char *stats = session_cache_stats();
        CHECK(stats != NULL, "session_cache_stats");
        hits = stat_of(stats, "hits");
        CHECK(strstr(stats, "\"channel_up\":true") != NULL, "the channel is up");
        free(stats);
    }
    CHECK(hits >= 3, "gets answered from the cache");
    char *value = session_get_value(id, "n");
    CHECK_STR(value, "1", "get_value");
    free(value);

    suite = "coherence";
    CHECK(session_update(id, "{\"n\":2}") == 1, "own update");
    char *data = session_get(id);
    CHECK_STR(data, "{\"n\":2}", "own update seen at once");
    free(data);
    CHECK(session_store_update(other, id, "{\"n\":3}") == 1, "update through the other store");
    int seen = 0;
    for (int i = 0; i < 20000 && !seen; i++) {
        data = session_get(id);
        seen = data != NULL && strcmp(data, "{\"n\":3}") == 0;
        free(data);
        if (!seen) {
            struct timespec pause = {0, 100000};
            nanosleep(&pause, NULL);
        }
    }
    CHECK(seen, "the other store's update is seen");
    CHECK(session_store_destroy(other, id) == 1, "destroy through the other store");
    seen = 0;
    for (int i = 0; i < 20000 && !seen; i++) {
        data = session_get(id);
        seen = data == NULL && session_last_error_code() == SESSION_ERROR_NOT_FOUND;
        free(data);
    }
    CHECK(seen, "the destroy is seen");
    free(id);

    suite = "errors";
    CHECK(session_store_cache_stats(NULL) == NULL, "NULL store");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "NULL store");
    CHECK(session_store_cache_stats(other) == NULL, "a store without the cache");
    CHECK_ERROR(SESSION_ERROR_INVALID_ARGUMENT, "a store without the cache");
    CHECK(strstr(session_last_error(), "local_cache") != NULL, "the message names local_cache");

    session_store_close(other);
    session_shutdown();
    return summary();
}
