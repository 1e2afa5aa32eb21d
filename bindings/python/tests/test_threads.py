"""8 threads sharing one Store: mixed operations, no error, exact final counts."""

import json
import threading
import time

import pytest

import libsession
from libsession import Conflict, InvalidArgument, NotFound

THREADS = 8
ROUNDS = 100


def run_threads(target):
    barrier = threading.Barrier(THREADS)
    errors = []

    def body(t):
        try:
            barrier.wait()
            target(t)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append((t, repr(err)))

    threads = [threading.Thread(target=body, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_eight_threads_share_one_store(make_store):
    store = make_store(owner_key="user_id")
    shared = store.create("{}")  # every thread sets its own keys here
    counter = store.create('{"n":0}')  # incremented by compare-and-set
    conflicts = [0] * THREADS
    kept = [[] for _ in range(THREADS)]

    def work(t):
        for i in range(ROUNDS):
            data = json.dumps({"user_id": t, "i": i})
            sid = store.create(data) if i % 3 else store.create(data, ttl=600)
            assert store.get(sid) == data
            store.set_value(shared, f"t{t}-k{i}", str(i))
            store.set_value(sid, "seen", "true")
            assert store.get_value(sid, "seen") == "true"
            store.touch(sid)
            assert store.exists(sid) is True
            assert store.ttl(sid) >= 1
            while True:
                text, version = store.get_versioned(counter)
                try:
                    store.update_if(counter, json.dumps({"n": json.loads(text)["n"] + 1}), version)
                    break
                except Conflict:
                    conflicts[t] += 1
            if i % 2:
                # Failures interleaved with other threads' successes: each must
                # carry this thread's own code.
                store.destroy(sid)
                assert store.get(sid) is None
                assert store.exists(sid) is False
                try:
                    store.update(sid, "{}")
                    raise AssertionError("update of a destroyed session succeeded")
                except NotFound:
                    pass
                try:
                    store.get("x" * 10)
                    raise AssertionError("get of a malformed id succeeded")
                except InvalidArgument:
                    pass
            elif i % 4 == 0:
                new = store.regenerate(sid)
                assert store.get(sid) is None
                kept[t].append(new)
            else:
                store.update(sid, json.dumps({"user_id": t, "i": i, "updated": True}))
                kept[t].append(sid)

    errors = run_threads(work)
    assert errors == []
    survivors = sum(len(k) for k in kept)
    assert survivors == THREADS * ROUNDS // 2
    assert store.count() == 2 + survivors
    keys = json.loads(store.get(shared))
    assert len(keys) == THREADS * ROUNDS
    assert keys == {f"t{t}-k{i}": i for t in range(THREADS) for i in range(ROUNDS)}
    assert json.loads(store.get(counter)) == {"n": THREADS * ROUNDS}
    for t in range(THREADS):
        assert sorted(store.list_owner(str(t))) == sorted(kept[t])
        assert store.count_owner(str(t)) == ROUNDS // 2
    assert store.destroy_owner("3") == ROUNDS // 2
    assert store.count() == 2 + survivors - ROUNDS // 2


def test_close_while_threads_use_the_store(make_store):
    """close() never frees the handle under a call in flight: the calls after it
    raise InvalidArgument, none crashes."""
    store = make_store()
    sid = store.create("{}")
    started = threading.Barrier(THREADS + 1)
    after_close = []
    errors = []

    def work(t):
        started.wait()
        try:
            while True:
                try:
                    assert store.get(sid).startswith("{")
                    store.set_value(sid, f"k{t}", "1")
                except InvalidArgument as err:
                    assert "closed" in err.message
                    after_close.append(t)
                    return
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append((t, repr(err)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.2)
    store.close()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(after_close) == list(range(THREADS))
