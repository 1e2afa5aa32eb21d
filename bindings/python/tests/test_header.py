"""Every function of include/session.h is declared, with the right types, and has
a Python wrapper. A C function added to the header without both fails here."""

import ctypes
import re

import libsession
from conftest import HEADER

# C type (as spelled in the header, white space normalised) -> ctypes type.
ARG_TYPES = {
    "const char *": ctypes.c_char_p,
    "char *": ctypes.c_char_p,
    "long": ctypes.c_long,
    "int": ctypes.c_int,
    "unsigned long long": ctypes.c_ulonglong,
    "unsigned long long *": ctypes.POINTER(ctypes.c_ulonglong),
    "const session_store_t *": ctypes.c_void_p,
    "session_store_t *": ctypes.c_void_p,
    "void *": ctypes.c_void_p,
}
RETURN_TYPES = {
    # Every pointer result is c_void_p: never c_char_p, which would lose the
    # pointer that session_free must release.
    "char *": ctypes.c_void_p,
    "const char *": ctypes.c_void_p,
    "session_store_t *": ctypes.c_void_p,
    "long": ctypes.c_long,
    "int": ctypes.c_int,
    "void": None,
}

# Header functions whose Python wrapper is not named after them.
SPECIAL_WRAPPERS = {
    "session_store_open": (libsession.Store, "from_file"),
    "session_store_open_json": (libsession.Store, "from_json"),
    "session_store": (libsession.Store, "named"),
    "session_store_close": (libsession.Store, "close"),
    "session_remove_expired": (libsession, "remove_expired"),
    "session_remove_expired_count": (libsession.default, "remove_expired"),
    "session_store_remove_expired": (libsession.Store, "remove_expired"),
    "session_create_ttl": (libsession.default, "create"),  # create(data, ttl=...)
    "session_store_create_ttl": (libsession.Store, "create"),
    "session_free": (libsession._api, "_take"),  # frees every string a call returns
    "session_init": (libsession, "init"),
    "session_init_json": (libsession, "init_json"),
    "session_shutdown": (libsession, "shutdown"),
    "session_create_id": (libsession, "create_id"),
    "session_last_error": (libsession, "last_error"),
    "session_last_error_code": (libsession, "last_error_code"),
    "session_version": (libsession, "version"),
}


def normalise(ctype):
    ctype = re.sub(r"\s+", " ", ctype).strip()
    return re.sub(r"\s*\*\s*", " *", ctype).strip()


def header_functions():
    """{name: (return type, [argument types])} of every prototype in the header."""
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"^\s*#[^\n]*", "", text, flags=re.M)
    text = re.sub(r"typedef[^;]*;", "", text, flags=re.S)  # struct and enum typedefs
    text = text.replace('extern "C" {', "").replace("}", "")
    functions = {}
    for match in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(\w+)\s*\(([^()]*)\)\s*;", text):
        ret, name, params = match.groups()
        args = []
        if params.strip() != "void":
            for param in params.split(","):
                # Drop the parameter's name: the last identifier.
                m = re.fullmatch(r"\s*(.*?[\s\*])(\w+)\s*", param, flags=re.S)
                assert m, f"cannot parse parameter {param!r} of {name}"
                args.append(normalise(m.group(1)))
        assert name not in functions, f"{name} twice in the header"
        functions[name] = (normalise(ret), args)
    return functions


def test_header_parses_to_the_expected_functions():
    functions = header_functions()
    assert len(functions) >= 61, sorted(functions)
    assert all(name.startswith("session_") for name in functions), sorted(functions)
    assert "session_create" in functions and "session_store_id_from_cookie_header" in functions


def test_every_header_function_is_declared_with_its_types():
    functions = header_functions()
    declared = libsession.FUNCTIONS
    assert sorted(set(functions) - set(declared)) == [], "functions of session.h without a declaration"
    assert sorted(set(declared) - set(functions)) == [], "declarations of functions not in session.h"
    for name, (ret, args) in functions.items():
        restype, argtypes = declared[name]
        assert ret in RETURN_TYPES, f"{name}: unknown C return type {ret!r}"
        assert restype is RETURN_TYPES[ret], f"{name}: restype {restype} for C {ret!r}"
        want = [ARG_TYPES[a] for a in args]
        assert list(argtypes) == want, f"{name}: argtypes {argtypes} for C {args}"
        # And the loaded library's function object carries them.
        fn = getattr(libsession.lib, name)
        assert fn.restype is restype, name
        assert list(fn.argtypes) == want, name


def test_no_function_returns_c_char_p():
    for name, (restype, _) in libsession.FUNCTIONS.items():
        assert restype is not ctypes.c_char_p, name


def test_every_header_function_has_a_python_wrapper():
    missing = []
    for name in header_functions():
        if name in SPECIAL_WRAPPERS:
            owner, attr = SPECIAL_WRAPPERS[name]
        elif name.startswith("session_store_"):
            owner, attr = libsession.Store, name[len("session_store_"):]
        else:
            owner, attr = libsession.default, name[len("session_"):]
        if not hasattr(owner, attr):
            missing.append(f"{name} -> {getattr(owner, '__name__', owner)}.{attr}")
    assert missing == [], "header functions without a Python wrapper"


def test_store_and_default_have_the_same_methods():
    public = {m for m in dir(libsession.Store) if not m.startswith("_")}
    on_default = {m for m in dir(libsession.default) if not m.startswith("_")}
    handle_only = {"close", "closed", "from_json", "from_file", "named"}
    assert public - handle_only == on_default


def test_version_matches_the_header():
    text = HEADER.read_text()
    (header_version,) = re.findall(r'#define LIBSESSION_VERSION "([^"]+)"', text)
    assert libsession.version() == header_version
    assert libsession.__version__ == header_version
