"""Fixtures shared by the whole suite.

- ``ctx``: a *standard library* multiprocessing context per start method (fork, spawn), so every
  cross-process test runs under both; its children are the standard library's processes and only
  the shared objects under test are shmproc's. Throughout the tests ``ctx`` means such a context;
  a shmproc context is called ``shm_ctx`` (tests/test_process.py, where shmproc's own Process is
  under test).
- An autouse guard: a test must leave no child process running and nothing new in /dev/shm.
"""
import gc
import inspect
import multiprocessing
import os
import sys
import time

import psutil
import pytest

sys.path.insert(0, os.path.dirname(__file__))   # support modules, importable by spawned children

START_METHODS = ("fork", "spawn")

# Processes a module-scoped fixture keeps for several tests (a Dask cluster's workers): the
# guard below does not count them; the fixture that made them ends them.
long_lived_pids = set()


@pytest.fixture(params=START_METHODS)
def ctx(request):
    return multiprocessing.get_context(request.param)


def assert_signature_extends(ours, theirs):
    """multiprocessing's parameters, in its order; shmproc's additions (Pool's retries=, cluster=,
    ...) only as keyword arguments after them, so no call written for multiprocessing changes."""
    parameters = list(ours.parameters.values())
    standard = list(theirs.parameters.values())
    assert parameters[:len(standard)] == standard, (ours, theirs)
    extra_kinds = {inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD}
    assert all(p.kind in extra_kinds for p in parameters[len(standard):]), (ours, theirs)


def _shm_entries():
    try:
        return set(os.listdir("/dev/shm"))
    except FileNotFoundError:
        return set()


def _live_children():
    # Zombies are children that exited but were not reaped yet: a finished test's Process objects
    # reap them when collected, so only processes still running count as leaks.
    return [c for c in psutil.Process().children(recursive=True)
            if c.status() != psutil.STATUS_ZOMBIE]


def _forkserver_and_trackers(children):
    # multiprocessing's helper processes (forkserver, resource tracker) live for the whole session
    # once started; they are not a test's leak.
    helpers = ("forkserver", "resource_tracker")
    kept = []
    for child in children:
        if child.pid in long_lived_pids:
            continue
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if not any(h in cmdline for h in helpers):
            kept.append(child)
    return kept


def shm_used_bytes():
    info = os.statvfs("/dev/shm")
    return (info.f_blocks - info.f_bfree) * info.f_frsize


@pytest.fixture(scope="session", autouse=True)
def session_returns_shared_memory():
    """shmproc's segments are unnamed, so a listing of /dev/shm cannot show a leak: the filesystem's
    usage can. Whatever the run used must be back when it ends, but for this process's own arenas."""
    before = shm_used_bytes()
    yield
    gc.collect()
    grown = shm_used_bytes() - before
    assert grown < 32 << 20, f"the test run left {grown >> 20} MiB of shared memory in use"


@pytest.fixture(autouse=True)
def leaves_nothing_behind(request):
    before_shm = _shm_entries()
    yield
    deadline = time.monotonic() + 5
    leaked = _forkserver_and_trackers(_live_children())
    while leaked and time.monotonic() < deadline:
        time.sleep(0.05)
        leaked = _forkserver_and_trackers(_live_children())
    for child in leaked:
        child.kill()
    new_shm = _shm_entries() - before_shm
    if new_shm:
        # multiprocessing names a semaphore for an instant before unlinking it: an entry made by some
        # other program on the machine at that instant is not ours. A leak is still there later.
        time.sleep(0.5)
        new_shm &= _shm_entries()
    assert not leaked, f"test left child processes running: {[c.pid for c in leaked]}"
    assert not new_shm, f"test left entries in /dev/shm: {sorted(new_shm)}"
