/*
 * server.c - a real web server with libsession: login, profile, logout and
 * "log out everywhere" on GNU libmicrohttpd, the C Web Framework's usage example
 * made runnable.
 *
 * Usage: server CONFIG_JSON_PATH PORT [THREADS]
 *   CONFIG_JSON_PATH  a config.json for session_init (any driver: files, memory,
 *                     Redis); it must set "owner_key": "user_id" for
 *                     /logout-everywhere
 *   PORT              TCP port on 127.0.0.1; 0 picks a free one
 *   THREADS           size of the thread pool (default 4)
 *
 * The first line on stdout is "listening on 127.0.0.1:PORT" with the real port.
 * SIGINT or SIGTERM stops the server cleanly (exit 0); every minute the main
 * thread calls session_remove_expired_count (files: deletes ended sessions).
 *
 * Routes:
 *   GET  /                   an HTML page: login form, profile link, logout buttons
 *   POST /login              new session {"user_id":42,"role":"admin"}; a session
 *                            the request already had is destroyed (no fixation);
 *                            Set-Cookie from session_cookie_header; "Login
 *                            successful", or 303 to /profile for a browser
 *                            (Accept: text/html)
 *   GET  /profile            200 "User ID: 42"; 401 without a live session (no,
 *                            forged, malformed, ended or corrupt cookie); 503 when
 *                            the store is down or times out
 *   POST /logout             destroys the session, clears the cookie
 *   POST /logout-everywhere  destroys every session of the user (session_destroy_owner)
 *
 * Everything about the cookie goes through libsession: session_cookie_header,
 * session_cookie_clear_header and session_id_from_cookie_header.
 *
 * Build: bash c_examples/web/build.sh (C11, -Wall -Wextra -Werror -pedantic).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <microhttpd.h>

#include "session.h"

/* Named so from libmicrohttpd 0.9.74 on; Debian 11 has 0.9.72. */
#ifndef MHD_HTTP_CONTENT_TOO_LARGE
#define MHD_HTTP_CONTENT_TOO_LARGE 413
#endif

/* What a login stores: exactly this, as the C Web Framework's example does. */
#define LOGIN_DATA "{\"user_id\":42,\"role\":\"admin\"}"
/* The member of the session data that names the user (the config's owner_key). */
#define USER_KEY "user_id"
/* Largest request body accepted (the login form is a few dozen bytes). */
#define MAX_BODY 8192
/* Most bytes of an unannounced (chunked) body read before the connection is closed. */
#define DROP_LIMIT (1024 * 1024)
/* Largest Cookie header considered (all Cookie: lines joined). */
#define MAX_COOKIE 16384
/* Seconds between two session_remove_expired calls. */
#define CLEANUP_INTERVAL 60

/* ---- responses ------------------------------------------------------------------ */

static const char INDEX_HTML[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<title>libsession demo</title>\n"
    "</head>\n"
    "<body>\n"
    "<h1>libsession demo</h1>\n"
    "<form id=\"login\" method=\"post\" action=\"/login\">\n"
    "<p><label>User <input name=\"username\" value=\"admin\" autocomplete=\"username\"></label></p>\n"
    "<p><label>Password <input name=\"password\" type=\"password\" value=\"demo\""
    " autocomplete=\"current-password\"></label></p>\n"
    "<p><button type=\"submit\">Log in</button> (any user and password: it is a demo)</p>\n"
    "</form>\n"
    "<p><a href=\"/profile\">Profile</a></p>\n"
    "<form id=\"logout\" method=\"post\" action=\"/logout\">"
    "<button type=\"submit\">Log out</button></form>\n"
    "<form id=\"logout-everywhere\" method=\"post\" action=\"/logout-everywhere\">"
    "<button type=\"submit\">Log out everywhere</button></form>\n"
    "<script>\n"
    "/* http://HOST/#autologin and #autologout submit that form by itself (for the\n"
    "   browser test: headless Chromium has no one to click). */\n"
    "if (location.hash === '#autologin') document.getElementById('login').submit();\n"
    "if (location.hash === '#autologout') document.getElementById('logout').submit();\n"
    "</script>\n"
    "</body>\n"
    "</html>\n";

/* An HTML page with a heading, one paragraph of plain text and the home link.
   `text` is written by this program (digits and fixed words): nothing to escape. */
static char *html_page(const char *title, const char *text)
{
    static const char fmt[] =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>%s</title>\n</head>\n<body>\n<h1>%s</h1>\n<p id=\"message\">%s</p>\n"
        "<p><a href=\"/\">Home</a></p>\n</body>\n</html>\n";
    int n = snprintf(NULL, 0, fmt, title, title, text);
    if (n < 0)
        return NULL;
    char *page = malloc((size_t)n + 1);
    if (page)
        snprintf(page, (size_t)n + 1, fmt, title, title, text);
    return page;
}

/* Queues a response: `body` as text/plain, or inside an HTML page when the client
   asked for HTML. `set_cookie` (a Set-Cookie value) and `location` may be NULL. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, int html,
                             const char *title, const char *body, const char *set_cookie,
                             const char *location)
{
    char *page = NULL;
    const char *content = body;
    const char *type = "text/plain; charset=utf-8";
    if (html) {
        page = html_page(title, body);
        if (page == NULL)
            return MHD_NO;
        content = page;
        type = "text/html; charset=utf-8";
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(content), (void *)content, MHD_RESPMEM_MUST_COPY);
    free(page);
    if (resp == NULL)
        return MHD_NO;
    int ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES
             && MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES
             && MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES;
    if (ok && set_cookie)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, set_cookie) == MHD_YES;
    if (ok && location)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location) == MHD_YES;
    if (ok && status == MHD_HTTP_SERVICE_UNAVAILABLE)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1") == MHD_YES;
    enum MHD_Result ret = ok ? MHD_queue_response(conn, status, resp) : MHD_NO;
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_index(struct MHD_Connection *conn)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof INDEX_HTML - 1, (void *)INDEX_HTML, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    int ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                     "text/html; charset=utf-8") == MHD_YES
             && MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES;
    enum MHD_Result ret = ok ? MHD_queue_response(conn, MHD_HTTP_OK, resp) : MHD_NO;
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_not_allowed(struct MHD_Connection *conn, const char *allow)
{
    static const char body[] = "Method Not Allowed";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    int ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) == MHD_YES
             && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        "text/plain; charset=utf-8") == MHD_YES;
    enum MHD_Result ret = ok ? MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp) : MHD_NO;
    MHD_destroy_response(resp);
    return ret;
}

/* The answer to a failed libsession call, from session_last_error_code(): no
   session (401), store down (503), or a fault of the server (500). Read the code
   right after the failed call: any libsession call replaces it. */
static enum MHD_Result reply_session_error(struct MHD_Connection *conn, int html, int code,
                                           const char *what)
{
    switch (code) {
    case SESSION_ERROR_CORRUPT: /* tampered with, or a secret missing: as forged, and logged */
        fprintf(stderr, "server: %s: corrupt session (tampered with, or its secret is not "
                        "configured): answered 401\n", what);
        /* fall through */
    case SESSION_ERROR_NOT_FOUND:        /* never created, ended, destroyed, regenerated away */
    case SESSION_ERROR_INVALID_ARGUMENT: /* a forged cookie, or data that is not an object */
        return reply(conn, MHD_HTTP_UNAUTHORIZED, html, "Not logged in", "Not authenticated",
                     NULL, NULL);
    case SESSION_ERROR_STORAGE_UNAVAILABLE:
    case SESSION_ERROR_TIMEOUT:
    case SESSION_ERROR_FULL:
        /* Log nobody out: the sessions are still there, the store will be back. */
        fprintf(stderr, "server: %s: store unavailable (code %d)\n", what, code);
        return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, html, "Service unavailable",
                     "Session store unavailable, try again", NULL, NULL);
    default:
        fprintf(stderr, "server: %s failed (code %d)\n", what, code);
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, html, "Server error",
                     "Internal server error", NULL, NULL);
    }
}

/* ---- requests ------------------------------------------------------------------- */

/* Per-request state: how much of the body was read, and whether its announced
   Content-Length was too large (then the 413 went out before the body). */
struct request {
    size_t body;
    int too_large;
};

struct cookie_join {
    char buf[MAX_COOKIE];
    size_t len;
    int found;
    int overflow;
};

static enum MHD_Result join_cookie(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct cookie_join *j = cls;
    (void)kind;
    if (key == NULL || value == NULL || strcasecmp(key, MHD_HTTP_HEADER_COOKIE) != 0)
        return MHD_YES;
    size_t n = strlen(value);
    size_t sep = j->found ? 2 : 0;
    if (j->len + sep + n + 1 > sizeof j->buf) {
        j->overflow = 1;
        return MHD_NO;
    }
    if (sep)
        memcpy(j->buf + j->len, "; ", 2);
    memcpy(j->buf + j->len + sep, value, n + 1);
    j->len += sep + n;
    j->found = 1;
    return MHD_YES;
}

/* The session id of the request's cookie (malloc'd; free it), or NULL when it has
   no well-formed session cookie. Several Cookie: lines are joined as one header. */
static char *cookie_session_id(struct MHD_Connection *conn)
{
    struct cookie_join *j = malloc(sizeof *j);
    if (j == NULL)
        return NULL;
    j->len = 0;
    j->found = 0;
    j->overflow = 0;
    j->buf[0] = '\0';
    MHD_get_connection_values(conn, MHD_HEADER_KIND, join_cookie, j);
    char *id = NULL;
    if (j->found && !j->overflow)
        id = session_id_from_cookie_header(j->buf);
    free(j);
    return id;
}

static int wants_html(struct MHD_Connection *conn)
{
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    return accept != NULL && strstr(accept, "text/html") != NULL;
}

/* The user id of session `id` as its JSON text ("42"), or NULL: then *code says
   why (SESSION_ERROR_NOT_FOUND also for a session without a numeric user_id). */
static char *session_user(const char *id, int *code)
{
    char *user = session_get_value(id, USER_KEY);
    *code = session_last_error_code();
    if (user == NULL) {
        if (*code == SESSION_ERROR_OK)
            *code = SESSION_ERROR_NOT_FOUND; /* a session, but nobody logged in */
        return NULL;
    }
    /* This demo's users are numbers: anything else is not one of its logins (and
       a number needs no escaping in HTML). */
    size_t n = strlen(user);
    int digits = n > 0 && n <= 19;
    for (size_t i = 0; digits && i < n; i++)
        digits = user[i] >= '0' && user[i] <= '9';
    if (!digits) {
        free(user);
        *code = SESSION_ERROR_NOT_FOUND;
        return NULL;
    }
    return user;
}

static enum MHD_Result do_login(struct MHD_Connection *conn, int html)
{
    /* A session the request already has (an id planted by an attacker, or the
       user's previous login) must not survive the login: the new login gets a
       fresh id, the old one is destroyed. The new session is created first so a
       store failure leaves the user as they were. */
    char *old = cookie_session_id(conn);
    char *id = session_create(LOGIN_DATA);
    if (id == NULL) {
        int code = session_last_error_code();
        free(old);
        return reply_session_error(conn, html, code == SESSION_ERROR_NOT_FOUND ? -1 : code,
                                   "session_create");
    }
    if (old != NULL && !session_destroy(old)) {
        int code = session_last_error_code();
        session_destroy(id); /* best effort: the client never learns this id */
        free(id);
        free(old);
        return reply_session_error(conn, html, code == SESSION_ERROR_NOT_FOUND ? -1 : code,
                                   "session_destroy");
    }
    free(old);
    char *set_cookie = session_cookie_header(id);
    free(id);
    if (set_cookie == NULL)
        return reply_session_error(conn, html, -1, "session_cookie_header");
    enum MHD_Result ret;
    if (html)
        ret = reply(conn, MHD_HTTP_SEE_OTHER, 1, "Logged in",
                    "Login successful: <a href=\"/profile\">profile</a>", set_cookie, "/profile");
    else
        ret = reply(conn, MHD_HTTP_OK, 0, NULL, "Login successful", set_cookie, NULL);
    free(set_cookie);
    return ret;
}

static enum MHD_Result do_profile(struct MHD_Connection *conn, int html)
{
    char *id = cookie_session_id(conn);
    if (id == NULL)
        return reply_session_error(conn, html, SESSION_ERROR_NOT_FOUND, "cookie");
    int code;
    char *user = session_user(id, &code);
    free(id);
    if (user == NULL)
        return reply_session_error(conn, html, code, "session_get_value");
    char text[64];
    snprintf(text, sizeof text, "User ID: %s", user);
    free(user);
    return reply(conn, MHD_HTTP_OK, html, "Profile", text, NULL, NULL);
}

static enum MHD_Result do_logout(struct MHD_Connection *conn, int html)
{
    char *id = cookie_session_id(conn);
    if (id != NULL && !session_destroy(id)) {
        int code = session_last_error_code();
        free(id);
        /* The session still lives: say so rather than pretend the user is out. */
        return reply_session_error(conn, html, code == SESSION_ERROR_NOT_FOUND ? -1 : code,
                                   "session_destroy");
    }
    free(id);
    char *clear = session_cookie_clear_header();
    if (clear == NULL)
        return reply_session_error(conn, html, -1, "session_cookie_clear_header");
    enum MHD_Result ret = html ? reply(conn, MHD_HTTP_SEE_OTHER, 1, "Logged out", "Logged out",
                                       clear, "/")
                               : reply(conn, MHD_HTTP_OK, 0, NULL, "Logged out", clear, NULL);
    free(clear);
    return ret;
}

static enum MHD_Result do_logout_everywhere(struct MHD_Connection *conn, int html)
{
    char *id = cookie_session_id(conn);
    if (id == NULL)
        return reply_session_error(conn, html, SESSION_ERROR_NOT_FOUND, "cookie");
    int code;
    char *user = session_user(id, &code);
    free(id);
    if (user == NULL)
        return reply_session_error(conn, html, code, "session_get_value");
    /* Owner "42" for "user_id": 42: the owner is the number's JSON text. */
    long ended = session_destroy_owner(user);
    code = session_last_error_code();
    free(user);
    if (ended < 0)
        return reply_session_error(conn, html, code == SESSION_ERROR_NOT_FOUND ? -1 : code,
                                   "session_destroy_owner");
    char *clear = session_cookie_clear_header();
    if (clear == NULL)
        return reply_session_error(conn, html, -1, "session_cookie_clear_header");
    char text[80];
    snprintf(text, sizeof text, "Logged out everywhere: %ld session%s ended", ended,
             ended == 1 ? "" : "s");
    enum MHD_Result ret = html ? reply(conn, MHD_HTTP_SEE_OTHER, 1, "Logged out", text, clear, "/")
                               : reply(conn, MHD_HTTP_OK, 0, NULL, text, clear, NULL);
    free(clear);
    return ret;
}

static int is(const char *method, const char *name)
{
    return strcmp(method, name) == 0;
}

static enum MHD_Result route(struct MHD_Connection *conn, const char *url, const char *method)
{
    int html = wants_html(conn);
    int get = is(method, MHD_HTTP_METHOD_GET) || is(method, MHD_HTTP_METHOD_HEAD);
    int post = is(method, MHD_HTTP_METHOD_POST);
    if (strcmp(url, "/") == 0)
        return get ? reply_index(conn) : reply_not_allowed(conn, "GET, HEAD");
    if (strcmp(url, "/profile") == 0)
        return get ? do_profile(conn, html) : reply_not_allowed(conn, "GET, HEAD");
    if (strcmp(url, "/login") == 0)
        return post ? do_login(conn, html) : reply_not_allowed(conn, "POST");
    if (strcmp(url, "/logout") == 0)
        return post ? do_logout(conn, html) : reply_not_allowed(conn, "POST");
    if (strcmp(url, "/logout-everywhere") == 0)
        return post ? do_logout_everywhere(conn, html) : reply_not_allowed(conn, "POST");
    return reply(conn, MHD_HTTP_NOT_FOUND, html, "Not found", "Not found", NULL, NULL);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    if (s[0] < '0' || s[0] > '9')
        return 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return 0;
    *out = v;
    return 1;
}

/* MHD calls this once when the headers are in, once per piece of the body, and
   once more at the end of the body: the answer goes out on that last call. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **req_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    struct request *req = *req_cls;
    if (req == NULL) {
        req = calloc(1, sizeof *req);
        if (req == NULL)
            return MHD_NO;
        *req_cls = req;
        /* A body announced too large is refused before it is read (a client that
           sent "Expect: 100-continue" then never sends it). */
        const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long announced;
        if (length != NULL && (!parse_uint(length, ULONG_MAX, &announced) || announced > MAX_BODY)) {
            req->too_large = 1;
            return reply(conn, MHD_HTTP_CONTENT_TOO_LARGE, 0, NULL, "Request body too large",
                         NULL, NULL);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* The demo's login accepts any user: the body is read and dropped. A body
           without Content-Length (chunked) that grows too large is read to its end
           and answered 413 (MHD takes a response only before or after the body),
           up to DROP_LIMIT bytes: past that the connection is closed. */
        req->body += *upload_data_size;
        *upload_data_size = 0;
        if (req->body > DROP_LIMIT)
            return MHD_NO;
        return MHD_YES;
    }
    if (req->too_large)
        return MHD_YES; /* answered on the first call */
    if (req->body > MAX_BODY)
        return reply(conn, MHD_HTTP_CONTENT_TOO_LARGE, 0, NULL, "Request body too large", NULL,
                     NULL);
    return route(conn, url, method);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    free(*req_cls);
    *req_cls = NULL;
}

/* ---- main ----------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s CONFIG_JSON_PATH PORT [THREADS]\n", argv[0]);
        return 2;
    }
    unsigned long port, threads = 4;
    if (!parse_uint(argv[2], 65535, &port)) {
        fprintf(stderr, "server: bad port %s (0 to 65535; 0 picks a free one)\n", argv[2]);
        return 2;
    }
    if (argc == 4 && (!parse_uint(argv[3], 256, &threads) || threads == 0)) {
        fprintf(stderr, "server: bad thread count %s (1 to 256)\n", argv[3]);
        return 2;
    }
    if (!session_init(argv[1])) {
        fprintf(stderr, "server: session_init(%s): %s\n", argv[1], session_last_error());
        return 1;
    }

    /* SIGINT and SIGTERM are taken by sigtimedwait below: block them before MHD
       starts its threads, which inherit the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    struct MHD_Daemon *daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        handle, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
        MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    if (daemon == NULL) {
        fprintf(stderr, "server: cannot listen on 127.0.0.1:%lu\n", port);
        session_shutdown();
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on 127.0.0.1:%u\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    for (;;) {
        struct timespec wait = { CLEANUP_INTERVAL, 0 };
        int sig = sigtimedwait(&stop, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM)
            break;
        if (sig < 0 && errno == EAGAIN && session_remove_expired_count() < 0)
            fprintf(stderr, "server: session_remove_expired: %s\n", session_last_error());
    }

    MHD_stop_daemon(daemon);
    session_shutdown();
    printf("stopped\n");
    return 0;
}
