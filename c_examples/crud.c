/*
 * crud.c - libsession in a C web server, without any HTTP library.
 *
 * Follows the C Web Framework's usage of sessions:
 *   POST /login    -> session_create("{...user json...}") and a Set-Cookie header
 *   GET  /profile  -> session_get(cookie) and a look at the JSON
 *   POST /cart     -> session_update(cookie, "{...}")
 *   POST /sudo     -> session_regenerate(cookie): a fresh id against fixation
 *   POST /logout   -> session_destroy(cookie)
 *   GET  /profile  -> NULL with SESSION_ERROR_NOT_FOUND: answer 401
 *
 * The request context is simulated with plain structs. No init call: the
 * embedded default keeps the session files in ./sessions (relative to the cwd).
 *
 * Build: cc -std=c11 -Wall -Wextra -pedantic -Iinclude c_examples/crud.c \
 *           -Ltarget/release -lsession -Wl,-rpath,$PWD/target/release -o crud
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

#define COOKIE_NAME "session_id"

/* A minimal request and response, standing in for the framework's types. */
typedef struct {
    const char *method;
    const char *path;
    char cookie[128];     /* value of the session_id cookie, "" if none */
} request_t;

typedef struct {
    int status;
    char set_cookie[256]; /* Set-Cookie header, "" if none */
    char body[512];
} response_t;

/* Prints the error of the last libsession call and exits. */
static void die(const char *what)
{
    int code = session_last_error_code();
    const char *msg = session_last_error();
    fprintf(stderr, "crud: %s failed: code %d: %s\n", what, code, msg ? msg : "(no message)");
    exit(1);
}

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "crud: unexpected result: %s\n", what);
        exit(1);
    }
}

/* Extracts the value of COOKIE_NAME from a "Set-Cookie" header, as a browser would. */
static void browser_store_cookie(const response_t *res, request_t *next)
{
    const char *prefix = COOKIE_NAME "=";
    const char *start = strstr(res->set_cookie, prefix);
    next->cookie[0] = '\0';
    if (start == NULL)
        return;
    start += strlen(prefix);
    size_t len = strcspn(start, ";");
    if (len >= sizeof next->cookie)
        len = sizeof next->cookie - 1;
    memcpy(next->cookie, start, len);
    next->cookie[len] = '\0';
}

/* POST /login: the credentials were checked; create the session. */
static void handle_login(const request_t *req, response_t *res, const char *user)
{
    (void)req;
    char data[256];
    snprintf(data, sizeof data, "{\"user\":\"%s\",\"role\":\"admin\",\"cart\":[]}", user);

    char *id = session_create(data);
    if (id == NULL)
        die("session_create");
    expect(strlen(id) == SESSION_ID_LEN, "session id is SESSION_ID_LEN characters");

    res->status = 200;
    snprintf(res->set_cookie, sizeof res->set_cookie,
             COOKIE_NAME "=%s; Path=/; HttpOnly; Secure; SameSite=Lax", id);
    snprintf(res->body, sizeof res->body, "welcome %s", user);
    free(id);
}

/* GET /profile: read the session named by the cookie. */
static void handle_profile(const request_t *req, response_t *res)
{
    if (req->cookie[0] == '\0') {
        res->status = 401;
        snprintf(res->body, sizeof res->body, "no session cookie");
        return;
    }
    char *data = session_get(req->cookie);
    if (data == NULL) {
        int code = session_last_error_code();
        if (code == SESSION_ERROR_NOT_FOUND) {
            res->status = 401; /* logged out or expired: log in again */
            snprintf(res->body, sizeof res->body, "please log in");
        } else if (code == SESSION_ERROR_INVALID_ARGUMENT) {
            res->status = 400;
            snprintf(res->body, sizeof res->body, "malformed session cookie");
        } else {
            res->status = 503; /* the store is down: not the user's fault */
            snprintf(res->body, sizeof res->body, "try again later");
        }
        return;
    }
    /* A parse-ish check of the JSON: find the user name. */
    const char *key = "\"user\":\"";
    const char *user = strstr(data, key);
    if (user == NULL || data[0] != '{' || data[strlen(data) - 1] != '}') {
        res->status = 500;
        snprintf(res->body, sizeof res->body, "corrupt session data");
    } else {
        user += strlen(key);
        int len = (int)strcspn(user, "\"");
        res->status = 200;
        snprintf(res->body, sizeof res->body, "profile of %.*s; session data %s", len, user, data);
    }
    free(data);
}

/* POST /cart: add an item, rewriting the session data. */
static void handle_cart(const request_t *req, response_t *res, const char *user, const char *item)
{
    char data[256];
    snprintf(data, sizeof data, "{\"user\":\"%s\",\"role\":\"admin\",\"cart\":[\"%s\"]}", user, item);
    if (!session_update(req->cookie, data)) {
        if (session_last_error_code() == SESSION_ERROR_NOT_FOUND) {
            res->status = 401;
            snprintf(res->body, sizeof res->body, "please log in");
            return;
        }
        die("session_update");
    }
    res->status = 200;
    snprintf(res->body, sizeof res->body, "added %s", item);
}

/* POST /logout: destroy the session and expire the cookie. */
static void handle_logout(const request_t *req, response_t *res)
{
    if (!session_destroy(req->cookie))
        die("session_destroy");
    res->status = 200;
    snprintf(res->set_cookie, sizeof res->set_cookie, COOKIE_NAME "=; Path=/; Max-Age=0");
    snprintf(res->body, sizeof res->body, "bye");
}

static void show(const request_t *req, const response_t *res)
{
    printf("%-4s %-8s -> %d %s\n", req->method, req->path, res->status, res->body);
    if (res->set_cookie[0] != '\0')
        printf("              Set-Cookie: %s\n", res->set_cookie);
}

int main(void)
{
    printf("libsession %s (header %s), sessions in ./sessions\n", session_version(), LIBSESSION_VERSION);
    expect(strcmp(session_version(), LIBSESSION_VERSION) == 0, "library and header versions match");

    request_t req = {"POST", "/login", ""};
    response_t res = {0, "", ""};

    /* 1. Log in: create the session and send the cookie. */
    handle_login(&req, &res, "alice");
    show(&req, &res);
    expect(res.status == 200, "login answers 200");

    request_t profile = {"GET", "/profile", ""};
    browser_store_cookie(&res, &profile);
    expect(strlen(profile.cookie) == SESSION_ID_LEN, "the browser got the session cookie");
    char cookie[128];
    snprintf(cookie, sizeof cookie, "%s", profile.cookie);

    /* 2. Profile: read the session. */
    memset(&res, 0, sizeof res);
    handle_profile(&profile, &res);
    show(&profile, &res);
    expect(res.status == 200 && strstr(res.body, "profile of alice") != NULL, "profile shows alice");

    /* 3. Update the session data. */
    request_t cart = {"POST", "/cart", ""};
    snprintf(cart.cookie, sizeof cart.cookie, "%s", cookie);
    memset(&res, 0, sizeof res);
    handle_cart(&cart, &res, "alice", "book");
    show(&cart, &res);
    expect(res.status == 200, "cart update answers 200");

    char *data = session_get(cookie);
    if (data == NULL)
        die("session_get after update");
    printf("     session data is now %s\n", data);
    expect(strstr(data, "\"cart\":[\"book\"]") != NULL, "the update is visible");
    free(data);

    /* 4. A privilege change: a fresh id for the same session, so that an id an
     *    attacker planted before it is worth nothing after it. */
    char *fresh = session_regenerate(cookie);
    if (fresh == NULL)
        die("session_regenerate");
    expect(session_exists(fresh) == 1, "the regenerated id is live");
    expect(session_exists(cookie) == 0 && session_last_error_code() == SESSION_ERROR_NOT_FOUND,
           "the old id is gone");
    long left = session_ttl(fresh);
    expect(left > 0, "session_ttl of the new id");
    printf("     regenerated: new cookie %.8s..., %ld s left, same data\n", fresh, left);
    snprintf(cookie, sizeof cookie, "%s", fresh);
    free(fresh);

    /* A forged cookie is rejected as malformed, not looked up. */
    request_t forged = {"GET", "/profile", "../../etc/passwd"};
    memset(&res, 0, sizeof res);
    handle_profile(&forged, &res);
    show(&forged, &res);
    expect(res.status == 400, "a forged cookie answers 400");

    /* 5. Log out: destroy the session. */
    request_t logout = {"POST", "/logout", ""};
    snprintf(logout.cookie, sizeof logout.cookie, "%s", cookie);
    memset(&res, 0, sizeof res);
    handle_logout(&logout, &res);
    show(&logout, &res);
    expect(res.status == 200, "logout answers 200");

    /* 6. The cookie replayed after logout: the session is gone. */
    data = session_get(cookie);
    expect(data == NULL, "session_get after logout returns NULL");
    int code = session_last_error_code();
    const char *msg = session_last_error();
    printf("     session_get after logout: NULL, code %d (SESSION_ERROR_NOT_FOUND is %d): %s\n",
           code, SESSION_ERROR_NOT_FOUND, msg ? msg : "(no message)");
    expect(code == SESSION_ERROR_NOT_FOUND, "the code is SESSION_ERROR_NOT_FOUND");
    expect(msg != NULL, "there is an error message");

    memset(&res, 0, sizeof res);
    handle_profile(&profile, &res);
    show(&profile, &res);
    expect(res.status == 401, "profile after logout answers 401");

    memset(&res, 0, sizeof res);
    handle_cart(&cart, &res, "alice", "pen");
    show(&cart, &res);
    expect(res.status == 401, "update after logout answers 401 and does not bring the session back");
    data = session_get(cookie);
    expect(data == NULL && session_last_error_code() == SESSION_ERROR_NOT_FOUND,
           "the session stays gone");

    session_remove_expired();
    expect(session_last_error_code() == SESSION_ERROR_OK, "session_remove_expired succeeds");

    session_shutdown();
    printf("crud: all steps OK\n");
    return 0;
}
