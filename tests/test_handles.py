"""Handles that outlive their sender (docs/internals/handles.md): every shmproc object that pickles
by reference, put into a Queue, SimpleQueue or Pipe by a process that then exits or is SIGKILLed,
is still attachable by the receiver; the keeper's copies are released, or dropped with their queue,
so memory is freed; and the keeper serves only its tree's user."""
import gc
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import support_handles
from support_handles import KINDS, check
from support_queues import joined
from support_segments import mounted_tmpfs

import shmproc
import shmproc.ndarray  # noqa: F401
from shmproc import keeper_client
from shmproc._core import shm_directory

MB = 1 << 20
JOIN = 60
CHANNELS = ("Queue", "SimpleQueue", "Pipe", "duplex Pipe")


def channel_ends(kind):
    """(receiving end, sending end) of a new channel of this kind (a duplex Pipe's notify
    descriptors are a socketpair, which cannot be opened through /proc: the keeper's copies)."""
    if kind == "Pipe":
        return shmproc.Pipe(duplex=False)
    if kind == "duplex Pipe":
        return shmproc.Pipe()
    queue = getattr(shmproc, kind)()
    return queue, queue


def receive(channel):
    return channel.recv() if hasattr(channel, "recv") else channel.get()


def shm_used_bytes():
    info = os.statvfs(shm_directory())
    return (info.f_blocks - info.f_bfree) * info.f_frsize


def wait_until(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def private_shm(monkeypatch):
    """Segments on a tmpfs of this test's own, so that other programs' use of /dev/shm does not
    disturb a usage measurement; skipped where no tmpfs can be mounted."""
    with mounted_tmpfs("1g") as path:
        if path is None:
            pytest.skip("cannot mount a tmpfs here (not root?)")
        monkeypatch.setenv("SHMPROC_SHM_DIR", path)
        yield path


@pytest.mark.parametrize("channel_kind", CHANNELS)
@pytest.mark.parametrize("ending", ["return", "kill"])
def test_every_kind_outlives_a_sender_that_ended(ctx, channel_kind, ending):
    receiving, sending = channel_ends(channel_kind)
    sender = ctx.Process(target=support_handles.send_every_kind_then_end, args=(sending, ending))
    sender.start()
    sender.join(JOIN)
    assert sender.exitcode == (-signal.SIGKILL if ending == "kill" else 0)
    for expected in KINDS:
        kind, obj = receive(receiving)          # the sender is gone: attached through the keeper
        assert kind == expected
        assert check(kind, obj)


def test_a_small_block_sent_and_dropped_is_not_reused_by_its_creator():
    queue = shmproc.Queue()
    sender = multiprocessing.get_context("fork").Process(
        target=support_handles.send_values_dropping_each, args=(queue,))
    sender.start()
    sender.join(JOIN)
    assert [queue.get().value, queue.get().value] == [1, 2]


@pytest.mark.timeout(120)
def test_pool_results_outlive_workers_that_exit(ctx):
    """maxtasksperchild=1: each worker exits after its one task. The pool itself keeps a result
    alive in its worker until the parent acknowledges it; the worker also deposits its handles, so
    the result no longer depends on that."""
    with shmproc.get_context(ctx.get_start_method()).Pool(2, maxtasksperchild=1) as pool:
        arrays = pool.map(support_handles.fresh_array, [1] * 6, chunksize=1)
    assert [float(array.sum()) for array in arrays] == [3.0 * (1 << 17)] * 6


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_receivers(method):
    queue, results = shmproc.Queue(), shmproc.Queue()
    sender = multiprocessing.get_context("fork").Process(
        target=support_handles.send_every_kind_then_end, args=(queue, "kill"))
    sender.start()
    sender.join(JOIN)
    receiver = multiprocessing.get_context(method).Process(
        target=support_handles.receive_every_kind, args=(queue, results))
    receiver.start()
    assert results.get(timeout=JOIN) == list(KINDS)
    joined(receiver)


@pytest.mark.timeout(120)
def test_a_thousand_handles_in_flight():
    queue = shmproc.Queue()
    sender = multiprocessing.get_context("fork").Process(
        target=support_handles.send_arrays_then_exit, args=(queue, 1000, 10_240))   # 80 KB each
    sender.start()
    sender.join(JOIN)
    assert sender.exitcode == 0
    for i in range(1000):
        array = queue.get()
        assert array.shape == (10_240,) and array[0] == i


@pytest.mark.timeout(180)
def test_short_lived_workers_returning_arrays_leave_usage_flat(private_shm):
    """The measured figure (10,000 workers) is in docs/internals/handles.md; this runs 300."""
    queue = shmproc.Queue()
    context = multiprocessing.get_context("fork")

    def worker_round():
        worker = context.Process(target=support_handles.return_fresh_array, args=(queue, 1))
        worker.start()
        worker.join(JOIN)
        array = queue.get()                     # the worker has exited: the keeper's copy
        assert array[0] == 1

    for _ in range(20):
        worker_round()
    gc.collect()
    before = shm_used_bytes()
    for _ in range(300):
        worker_round()
    gc.collect()
    assert wait_until(lambda: shm_used_bytes() - before < 4 * MB), \
        f"{(shm_used_bytes() - before) / MB:.1f} MB more in use after 300 workers"


def test_a_never_received_handle_is_freed_with_its_queue(private_shm):
    before = shm_used_bytes()
    for channel_kind in CHANNELS:
        receiving, sending = channel_ends(channel_kind)
        sender = multiprocessing.get_context("fork").Process(
            target=support_handles.return_fresh_array, args=(sending, 64))
        sender.start()
        sender.join(JOIN)
        assert wait_until(lambda: shm_used_bytes() - before >= 64 * MB)   # held by the keeper
        del receiving, sending
        gc.collect()
        assert wait_until(lambda: shm_used_bytes() - before < 4 * MB), \
            f"a {channel_kind}'s unread array still holds {(shm_used_bytes() - before) / MB:.0f} MB"


def test_a_handle_is_received_once_after_its_sender_is_gone():
    reader, writer = shmproc.Pipe(duplex=False)
    sender = multiprocessing.get_context("fork").Process(
        target=support_handles.send_array_then_exit, args=(writer, 100_000))
    sender.start()
    sender.join(JOIN)
    raw = reader.recv_bytes()                   # the pickle, not unpickled: nothing received yet
    array = pickle.loads(raw)
    assert array.shape == (100_000,)
    del array
    gc.collect()
    with pytest.raises(FileNotFoundError, match="cannot attach a shared-memory segment"):
        pickle.loads(raw)


def test_the_whole_tree_killed_leaves_nothing(private_shm):
    """A tree of its own (no $SHMPROC_KEEPER inherited): its root and child are SIGKILLed with a
    64 MB array in flight; the keeper exits with the root and the memory comes back."""
    script = textwrap.dedent("""
        import multiprocessing, os, sys
        sys.path.insert(0, sys.argv[1])
        import shmproc, support_handles
        from shmproc import keeper_client
        queue = shmproc.Queue()
        ready = multiprocessing.Event()
        child = multiprocessing.get_context("fork").Process(
            target=support_handles.put_array_and_wait, args=(queue, ready, 64))
        child.start()
        ready.wait(60)
        print(child.pid, keeper_client.keeper_pid(), flush=True)
        import signal
        signal.pause()
    """)
    environment = {k: v for k, v in os.environ.items() if k != "SHMPROC_KEEPER"}
    before = shm_used_bytes()
    root = subprocess.Popen([sys.executable, "-c", script, os.path.dirname(__file__)],
                            stdout=subprocess.PIPE, text=True, env=environment)
    try:
        child_pid, keeper_pid = map(int, root.stdout.readline().split())
        assert shm_used_bytes() - before >= 64 * MB
        assert keeper_pid != child_pid and keeper_pid != root.pid
        os.kill(child_pid, signal.SIGKILL)
        root.kill()
    finally:
        root.kill()
        root.wait()
        root.stdout.close()
    assert wait_until(lambda: not os.path.exists(f"/proc/{keeper_pid}")), "the keeper outlived its root"
    assert wait_until(lambda: shm_used_bytes() - before < 4 * MB)


def keeper_answer_to_a_fetch():
    """What the keeper says to a FETCH of a handle it does not hold: b"N", or b"" if it hung up."""
    import socket

    from shmproc import keeper
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.settimeout(JOIN)
        sock.connect(keeper_client._ADDRESS)
        try:
            sock.send(keeper.FETCH_REQUEST.pack(keeper.FETCH, 1, 1))
            return sock.recv(16)
        except (ConnectionResetError, BrokenPipeError):
            return b""


def test_the_keeper_serves_only_its_user():
    if os.getuid() != 0:
        pytest.skip("needs root, to become another user")
    queue = shmproc.Queue()
    queue.put(shmproc.zeros(10))                # makes sure the keeper runs
    queue.get()
    assert keeper_answer_to_a_fetch() == b"N"
    child = os.fork()
    if child == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            os._exit(0 if keeper_answer_to_a_fetch() == b"" else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
