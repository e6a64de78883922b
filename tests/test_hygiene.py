"""The suite's own guards must be able to fail: a leaked child and a named /dev/shm entry are seen."""
import multiprocessing
import os
import time

import conftest


def test_a_running_child_is_reported_as_leaked():
    p = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
    p.start()
    try:
        leaked = conftest._forkserver_and_trackers(conftest._live_children())
        assert p.pid in [c.pid for c in leaked]
    finally:
        p.kill()
        p.join(10)
    assert p.pid not in [c.pid for c in conftest._live_children()]


def test_a_named_shm_entry_is_seen():
    path = f"/dev/shm/shmproc-hygiene-{os.getpid()}"
    before = conftest._shm_entries()
    open(path, "w").close()
    try:
        assert conftest._shm_entries() - before == {os.path.basename(path)}
    finally:
        os.unlink(path)
