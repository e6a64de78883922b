"""A duplex Pipe's notify protocol under a random conversation between two processes: messages,
descriptors passed with the standard library's send_handle, fileno() asked for at random moments,
and both wait() functions before each recv() (docs/internals/ring.md, "The notify descriptor")."""
import multiprocessing
import multiprocessing.connection
import os
import random
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))   # support modules
import support_reduction  # noqa: E402
from support_queues import joined  # noqa: E402

import shmproc  # noqa: E402
import shmproc.connection  # noqa: E402

pytestmark = pytest.mark.stress
ROUNDS = 2000


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("seed", [1, 2])
def test_random_conversation_misses_no_wakeup_and_leaves_no_readiness(method, seed, tmp_path):
    path = tmp_path / "passed"
    path.write_bytes(b"x")
    here, there = shmproc.Pipe()
    child = multiprocessing.get_context(method).Process(
        target=support_reduction.converse_as_child, args=(there, seed + 1000, ROUNDS, path))
    child.start()
    there.close()
    rnd = random.Random(seed)
    for _ in range(ROUNDS):
        support_reduction.send_batch(here, rnd, path, child.pid)
        support_reduction.receive_batch(here, rnd)
    assert here.recv() == "end"
    # Everything sent is received, and the child sends nothing more: nothing may look readable.
    assert multiprocessing.connection.wait([here], 0) == []
    assert shmproc.connection.wait([here], 0) == []
    here.send("bye")
    joined(child)
    here.close()
