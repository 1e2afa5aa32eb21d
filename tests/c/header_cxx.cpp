// header_cxx.cpp - include/session.h compiles as C++ and links from C++.
// Build: c++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude tests/c/header_cxx.cpp -lsession
#include "session.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main()
{
    if (std::strcmp(session_version(), LIBSESSION_VERSION) != 0) {
        std::fprintf(stderr, "header_cxx: version mismatch\n");
        return 1;
    }
    if (!session_init_json("{\"sessions\": {\"driver\": \"memory\"}}"))
        return 1;
    char *id = session_create_id();
    if (id == nullptr || std::strlen(id) != SESSION_ID_LEN)
        return 1;
    session_error code = static_cast<session_error>(session_last_error_code());
    std::free(id);
    char *sid = session_create("{\"lang\":\"c++\"}");
    if (sid == nullptr || code != SESSION_ERROR_OK)
        return 1;
    char *data = session_get(sid);
    int ok = data != nullptr && std::strcmp(data, "{\"lang\":\"c++\"}") == 0;
    session_free(data);
    ok = ok && session_destroy(sid) && session_get(sid) == nullptr &&
         session_last_error_code() == SESSION_ERROR_NOT_FOUND;
    session_free(sid);
    session_shutdown();
    std::printf("header_cxx: %s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
