"""Every Store method on the file, memory and Redis drivers."""

import json
import re
import time

import pytest

import libsession
from conftest import cached_gets
from libsession import Conflict, ConfigError, ErrorCode, InvalidArgument, NotFound, TooLarge

ID = re.compile(r"^[0-9a-f]{64}$")
MISSING = "0123456789abcdef" * 4  # well-formed, never created
MALFORMED = [
    "",
    "abc",
    "0" * 63,
    "0" * 65,
    "A" * 64,
    "g" * 64,
    "../" + "0" * 61,
    "/etc/passwd",
    "0" * 32 + " " + "0" * 31,
    "\u00e9" * 64,
]


def test_create_get_update_destroy(store):
    sid = store.create('{"user_id":42}')
    assert isinstance(sid, str) and ID.match(sid)
    assert store.get(sid) == '{"user_id":42}'
    assert store.get_bytes(sid) == b'{"user_id":42}'
    assert store.update(sid, b'{"user_id":42,"cart":[1]}') is None
    assert store.get(sid) == '{"user_id":42,"cart":[1]}'
    assert store.exists(sid) is True
    assert 3590 <= store.ttl(sid) <= 3600
    assert store.touch(sid) is None
    assert store.count() == 1
    assert store.destroy(sid) is None
    assert store.destroy(sid) is None  # already gone: no error
    assert store.get(sid) is None
    assert store.get_bytes(sid) is None
    assert store.exists(sid) is False
    assert store.ttl(sid) is None
    assert store.count() == 0
    for call in (
        lambda: store.update(sid, "x"),
        lambda: store.touch(sid),
        lambda: store.regenerate(sid),
    ):
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.code == ErrorCode.NOT_FOUND == 1


def test_ids_are_fresh(store):
    ids = {store.create("{}") for _ in range(50)}
    assert len(ids) == 50
    assert store.count() == 50


def test_create_ttl(make_store):
    store = make_store(lifetime=60, max_lifetime=7200)
    sid = store.create("{}", ttl=7000)
    assert 6990 <= store.ttl(sid) <= 7000
    assert 50 <= store.ttl(store.create("{}")) <= 60
    for bad in (0, -1, 7201, 2**70, -(2**70)):
        with pytest.raises(InvalidArgument):
            store.create("{}", ttl=bad)
    with pytest.raises(TypeError):
        store.create("{}", ttl=1.5)
    assert store.count() == 2


def test_expiry_and_remove_expired(make_store):
    store = make_store()
    short = store.create('{"short":1}', ttl=1)
    long = store.create('{"long":1}')
    assert store.ttl(short) == 1
    time.sleep(3.2)  # the file driver deletes an ended file once its end is 2 s old
    assert store.get(short) is None
    assert store.ttl(short) is None
    assert store.exists(short) is False
    assert store.get_versioned(short) is None
    with pytest.raises(NotFound):
        store.touch(short)
    with pytest.raises(NotFound):
        store.update(short, "{}")  # never resurrected
    assert store.count() == 1
    removed = store.remove_expired()
    # Redis expires keys itself: its remove_expired deletes nothing and says 0.
    assert removed == (0 if make_store.driver == "redis" else 1)
    assert store.remove_expired() == 0
    assert store.get(long) == '{"long":1}'
    assert store.count() == 1


def test_idle_timeout_touch(make_store):
    store = make_store(idle_timeout=2)
    sid = store.create("{}")
    idle = store.create("{}")
    assert store.ttl(sid) == 2
    for _ in range(3):
        time.sleep(0.8)
        store.touch(sid)
    assert store.exists(sid)
    assert store.get(idle) is None  # 2.4 s without use
    assert store.count() == 1


def test_regenerate(store):
    old = store.create('{"user_id":7}')
    store.set_value(old, "step", "1")
    new = store.regenerate(old)
    assert ID.match(new) and new != old
    assert store.get(new) == '{"user_id":7,"step":1}'
    assert store.get(old) is None
    assert store.exists(old) is False
    assert store.count() == 1
    with pytest.raises(NotFound):
        store.regenerate(old)
    with pytest.raises(NotFound):
        store.update(old, "{}")


def test_regenerate_grace(make_store):
    store = make_store(regenerate_grace=1)
    old = store.create("before")
    new = store.regenerate(old)
    assert store.get(old) == "before"  # in flight requests still read it
    with pytest.raises(NotFound) as info:
        store.update(old, "via the old id")  # read-only
    assert "regenerate" in info.value.message
    store.update(new, "after")
    assert store.get(new) == "after"
    time.sleep(1.2)
    assert store.get(old) is None
    assert store.get(new) == "after"


def test_per_key_values(store):
    sid = store.create('{"a":1}')
    assert store.get_value(sid, "a") == "1"
    assert store.get_value(sid, "absent") is None
    assert libsession.last_error_code() == ErrorCode.OK  # absent member: no error
    store.set_value(sid, "b", '"x"')
    store.set_value(sid, b"c", b"[1, 2]")
    assert store.get(sid) == '{"a":1,"b":"x","c":[1, 2]}'
    assert store.get_value(sid, "c") == "[1, 2]"
    store.set_value(sid, "a", '{"deep": true}')
    assert store.get_value(sid, "a") == '{"deep": true}'
    store.delete_value(sid, "b")
    store.delete_value(sid, "b")  # absent: no error
    assert store.pop_value(sid, "a") == '{"deep": true}'
    assert store.pop_value(sid, "a") is None
    assert store.get(sid) == '{"c":[1, 2]}'
    # Invalid JSON, or data that is not an object: InvalidArgument, data untouched.
    with pytest.raises(InvalidArgument):
        store.set_value(sid, "d", "not json")
    assert store.get(sid) == '{"c":[1, 2]}'
    plain = store.create("plain text")
    for call in (
        lambda: store.get_value(plain, "k"),
        lambda: store.set_value(plain, "k", "1"),
        lambda: store.delete_value(plain, "k"),
        lambda: store.pop_value(plain, "k"),
    ):
        with pytest.raises(InvalidArgument):
            call()
    assert store.get(plain) == "plain text"
    # A missing session: None from the readers, NotFound from the writers.
    assert store.get_value(MISSING, "c") is None
    assert libsession.last_error_code() == ErrorCode.NOT_FOUND
    assert store.pop_value(MISSING, "c") is None
    with pytest.raises(NotFound):
        store.set_value(MISSING, "c", "1")
    with pytest.raises(NotFound):
        store.delete_value(MISSING, "c")


def test_versions_and_update_if(store):
    sid = store.create('{"n":0}')
    data, v1 = store.get_versioned(sid)
    assert data == '{"n":0}' and isinstance(v1, int)
    assert store.get_versioned_bytes(sid) == (b'{"n":0}', v1)
    store.update_if(sid, '{"n":1}', v1)
    data, v2 = store.get_versioned(sid)
    assert data == '{"n":1}' and v2 > v1
    with pytest.raises(Conflict) as info:
        store.update_if(sid, '{"n":99}', v1)
    assert info.value.code == ErrorCode.CONFLICT == 9
    assert store.get(sid) == '{"n":1}'
    store.touch(sid)
    store.get(sid)
    assert store.get_versioned(sid)[1] == v2  # reads and touch keep the version
    store.set_value(sid, "k", "1")
    assert store.get_versioned(sid)[1] > v2
    assert store.get_versioned(MISSING) is None
    assert store.get_versioned_bytes(MISSING) is None
    with pytest.raises(NotFound):
        store.update_if(MISSING, "{}", v1)
    for bad in (-1, 2**64):
        with pytest.raises(InvalidArgument):
            store.update_if(sid, "{}", bad)


def test_malformed_ids_raise_invalid_argument(store):
    calls = {
        "get": lambda i: store.get(i),
        "get_bytes": lambda i: store.get_bytes(i),
        "update": lambda i: store.update(i, "{}"),
        "destroy": lambda i: store.destroy(i),
        "regenerate": lambda i: store.regenerate(i),
        "touch": lambda i: store.touch(i),
        "ttl": lambda i: store.ttl(i),
        "exists": lambda i: store.exists(i),
        "get_value": lambda i: store.get_value(i, "k"),
        "set_value": lambda i: store.set_value(i, "k", "1"),
        "delete_value": lambda i: store.delete_value(i, "k"),
        "pop_value": lambda i: store.pop_value(i, "k"),
        "get_versioned": lambda i: store.get_versioned(i),
        "update_if": lambda i: store.update_if(i, "{}", 1),
        "cookie_header": lambda i: store.cookie_header(i),
    }
    for bad in MALFORMED + ["0" * 32 + "\0" + "0" * 31]:
        for name, call in calls.items():
            with pytest.raises(InvalidArgument) as info:
                call(bad)
            assert info.value.code == ErrorCode.INVALID_ARGUMENT == 2, (name, bad)
            assert info.value.message, (name, bad)
    for bad in (None, 42, ["x"]):
        with pytest.raises(TypeError):
            store.get(bad)
    assert store.count() == 0


def test_bytes_and_str_data(store):
    raw = bytes(range(1, 256))  # every byte but NUL: not UTF-8
    sid = store.create(raw)
    assert store.get_bytes(sid) == raw
    text = store.get(sid)
    assert isinstance(text, str)
    store.update(sid, text)  # surrogateescape: the same bytes go back
    assert store.get_bytes(sid) == raw
    assert store.get_versioned_bytes(sid)[0] == raw
    unicode = '{"name":"Zo\u00eb \u2713 \U0001f600"}'
    store.update(sid, unicode)
    assert store.get(sid) == unicode
    assert store.get_bytes(sid) == unicode.encode()
    store.update(sid, bytearray(b"ba"))
    assert store.get(sid) == "ba"
    store.update(sid, memoryview(b"mv"))
    assert store.get(sid) == "mv"
    with pytest.raises(InvalidArgument):
        store.create(b"a\0b")  # C would cut it at the NUL
    with pytest.raises(InvalidArgument):
        store.update(sid, "a\0b")
    with pytest.raises(TypeError):
        store.create({"user_id": 1})
    big = "x" * (1 << 20)  # max_data_size by default
    store.update(sid, big)
    assert store.get(sid) == big
    with pytest.raises(TooLarge):
        store.update(sid, big + "y")


def test_too_large(make_store):
    store = make_store(max_data_size=100)
    with pytest.raises(TooLarge) as info:
        store.create("x" * 101)
    assert info.value.code == ErrorCode.TOO_LARGE == 3
    sid = store.create('{"a":"' + "x" * 80 + '"}')
    with pytest.raises(TooLarge):
        store.set_value(sid, "b", '"' + "y" * 20 + '"')
    with pytest.raises(TooLarge):
        store.create("x" * 101, ttl=10)
    assert store.count() == 1


def test_owner_index(make_store):
    store = make_store(owner_key="user_id", max_lifetime=7200)
    a = store.create('{"user_id":42}')
    b = store.create('{"user_id":42,"device":"phone"}', ttl=7000)
    c = store.create('{"user_id":"42"}', ttl=5000)  # "42" and 42 are one owner
    other = store.create('{"user_id":7}')
    anonymous = store.create('{"cart":[]}')
    assert store.count_owner("42") == 3
    assert store.count_owner(b"7") == 1
    assert store.count_owner("nobody") == 0
    owned = store.list_owner("42")
    assert owned == [a, c, b]  # the session that ends first first
    assert store.list_owner("nobody") == []
    # A session that gets its owner later.
    store.set_value(anonymous, "user_id", '"42"')
    assert store.count_owner("42") == 4
    # One whose owner changes leaves the old owner's list.
    store.set_value(c, "user_id", "7")
    assert sorted(store.list_owner("7")) == sorted([other, c])
    assert store.destroy_owner("42") == 3
    assert [store.exists(i) for i in (a, b, anonymous, c, other)] == [False] * 3 + [True] * 2
    assert store.count_owner("42") == 0
    assert store.destroy_owner("42") == 0
    assert store.count() == 2
    with pytest.raises(InvalidArgument):
        store.count_owner("")
    with pytest.raises(InvalidArgument):
        store.list_owner(b"\xff")  # not UTF-8


def test_max_sessions_per_owner(make_store):
    store = make_store(owner_key="user_id", max_sessions_per_owner=2, lifetime=600)
    first = store.create('{"user_id":1}', ttl=100)
    second = store.create('{"user_id":1}', ttl=200)
    third = store.create('{"user_id":1}', ttl=300)  # ends `first`, which ends first
    assert store.exists(first) is False
    assert store.list_owner("1") == [second, third]


def test_owner_calls_need_owner_key(store):
    for call in (store.destroy_owner, store.list_owner, store.count_owner):
        with pytest.raises(ConfigError) as info:
            call("42")
        assert "owner_key" in info.value.message


def test_cache_stats(make_store):
    if make_store.driver == "redis":
        # (A generous max_stale_ms: on a loaded machine a late heartbeat would send
        # the gets to Redis.)
        store = make_store(local_cache={"max_stale_ms": 2000})
        before = store.cache_stats()
        assert set(before) == {
            "hits", "misses", "invalidations", "flushes", "entries", "bytes", "channel_up",
        }
        assert before["hits"] == 0 and before["entries"] == 0
        sid = store.create('{"user_id":42}')
        stats = cached_gets(store, sid)
        assert stats["hits"] >= 1, stats
        assert stats["entries"] >= 1, stats
        assert stats["bytes"] > 0, stats
        assert stats["channel_up"] is True, stats
        assert all(type(stats[k]) is int for k in stats if k != "channel_up"), stats
    # Every driver without local_cache (the Redis one too): InvalidArgument.
    plain = make_store()
    with pytest.raises(InvalidArgument) as info:
        plain.cache_stats()
    assert info.value.code == ErrorCode.INVALID_ARGUMENT == 2
    assert "local_cache" in info.value.message


def test_cookies(make_store):
    store = make_store(lifetime=7200, cookie={"name": "__Host-sid", "same_site": "Strict"})
    sid = store.create("{}")
    header = store.cookie_header(sid)
    assert re.fullmatch(
        rf"__Host-sid={sid}; Max-Age=7200; Expires=[A-Z][a-z]{{2}}, \d\d [A-Z][a-z]{{2}} "
        r"\d{4} \d\d:\d\d:\d\d GMT; Path=/; Secure; HttpOnly; SameSite=Strict",
        header,
    ), header
    assert store.cookie_clear_header() == (
        "__Host-sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; "
        "HttpOnly; SameSite=Strict"
    )
    assert store.id_from_cookie_header(f"theme=dark; __Host-sid={sid}") == sid
    assert store.id_from_cookie_header(f'Cookie: __Host-sid="{sid}"; x=1') == sid
    assert store.id_from_cookie_header(f"__Host-sid=forged; __Host-sid={sid}") == sid
    assert store.id_from_cookie_header(b"theme=dark") is None
    assert libsession.last_error_code() == ErrorCode.NOT_FOUND
    assert store.id_from_cookie_header("__Host-sid=" + "A" * 64) is None
    assert store.id_from_cookie_header(f"session_id={sid}") is None  # another name
    assert store.id_from_cookie_header("") is None
    # It never looks the session up.
    assert store.id_from_cookie_header(f"__Host-sid={MISSING}") == MISSING
    assert store.cookie_header(MISSING).startswith(f"__Host-sid={MISSING};")


def test_cookie_defaults_and_session_cookie(make_store):
    plain = make_store(lifetime=60)
    sid = plain.create("{}")
    assert plain.cookie_header(sid).startswith(f"session_id={sid}; Max-Age=60; Expires=")
    assert plain.cookie_header(sid).endswith("; Path=/; Secure; HttpOnly; SameSite=Lax")
    session_cookie = make_store(cookie={"persistent": False, "secure": False})
    assert session_cookie.cookie_header(sid) == f"session_id={sid}; Path=/; HttpOnly; SameSite=Lax"


def test_bad_cookie_config(make_store):
    with pytest.raises(ConfigError) as info:
        make_store(cookie={"same_site": "None", "secure": False})
    assert "same_site" in info.value.message or "secure" in info.value.message


def test_closed_store(make_store):
    store = make_store()
    sid = store.create("{}")
    assert not store.closed
    store.close()
    assert store.closed
    store.close()  # idempotent
    assert "closed" in repr(store)
    methods = [
        lambda: store.create("{}"),
        lambda: store.create("{}", ttl=5),
        lambda: store.get(sid),
        lambda: store.get_bytes(sid),
        lambda: store.update(sid, "{}"),
        lambda: store.destroy(sid),
        lambda: store.regenerate(sid),
        lambda: store.touch(sid),
        lambda: store.ttl(sid),
        lambda: store.exists(sid),
        lambda: store.count(),
        lambda: store.remove_expired(),
        lambda: store.get_value(sid, "k"),
        lambda: store.set_value(sid, "k", "1"),
        lambda: store.delete_value(sid, "k"),
        lambda: store.pop_value(sid, "k"),
        lambda: store.get_versioned(sid),
        lambda: store.get_versioned_bytes(sid),
        lambda: store.update_if(sid, "{}", 1),
        lambda: store.destroy_owner("1"),
        lambda: store.list_owner("1"),
        lambda: store.count_owner("1"),
        lambda: store.cache_stats(),
        lambda: store.cookie_header(sid),
        lambda: store.cookie_clear_header(),
        lambda: store.id_from_cookie_header("a=b"),
    ]
    for call in methods:
        with pytest.raises(InvalidArgument, match="closed"):
            call()
    with pytest.raises(InvalidArgument):
        with store:
            pass


def test_context_manager_closes(make_store):
    with make_store() as store:
        store.create("{}")
        assert not store.closed
    assert store.closed


def test_store_cannot_be_constructed_directly():
    with pytest.raises(TypeError):
        libsession.Store()


def test_file_driver_writes_files(tmp_path):
    config = json.dumps({
        "sessions": {"driver": "storage", "storage_name": "s"},
        "storages": {"s": {"type": "filesystem", "root": str(tmp_path)}},
    })
    with libsession.Store.from_json(config) as store:
        sid = store.create("on disk")
        assert (tmp_path / "sessions" / sid).is_file()
    config_file = tmp_path / "config.json"
    config_file.write_text(config)
    with libsession.Store.from_file(config_file) as same:  # a PathLike
        assert same.get(sid) == "on disk"  # another handle on the same directory
    with libsession.Store.from_file(str(config_file).encode()) as same:  # bytes
        assert same.get(sid) == "on disk"
