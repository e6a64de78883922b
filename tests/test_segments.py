"""Shared-memory segments: privacy, lifetime across SIGKILL, and a clear error when memory runs out."""
import errno
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import support_segments
from support_segments import mounted_tmpfs, shm_directory_on_tmpfs

from shmproc._core import Block, Segment, allocate, shm_directory

MB = 1 << 20
JOIN = 20


def shm_used_bytes():
    info = os.statvfs(shm_directory())
    return (info.f_blocks - info.f_bfree) * info.f_frsize


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def descriptor_of(segment):
    _, _, (pid, fd, _) = segment.handle()
    assert pid == os.getpid()
    return fd


def test_segment_is_private_to_the_user_and_has_no_name():
    before = set(os.listdir("/dev/shm"))
    segment = Segment.create(4096)
    mode = os.fstat(descriptor_of(segment)).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert set(os.listdir("/dev/shm")) == before


def test_pages_are_reserved_up_front(private_shm):
    used = shm_used_bytes()
    segment = Segment.create(32 * MB)
    assert shm_used_bytes() - used >= 30 * MB
    del segment


def test_request_larger_than_free_space_is_a_clear_error():
    free = os.statvfs(shm_directory()).f_bavail * os.statvfs(shm_directory()).f_frsize
    with pytest.raises(OSError) as info:
        Segment.create(free + 64 * MB)
    assert info.value.errno == errno.ENOSPC
    assert "shared memory" in str(info.value)


def test_absurd_size_is_refused():
    with pytest.raises(ValueError):
        Segment.create(1 << 60)


@pytest.fixture
def tiny_tmpfs(monkeypatch):
    with shm_directory_on_tmpfs(monkeypatch, "1m") as path:
        yield path


@pytest.fixture
def private_shm(monkeypatch):
    """Segments go to a tmpfs of this test's own, so its usage is not disturbed by other programs
    using /dev/shm at the same time; /dev/shm itself where a tmpfs cannot be mounted."""
    with mounted_tmpfs("512m") as path:
        if path is not None:
            monkeypatch.setenv("SHMPROC_SHM_DIR", path)
        yield


def test_full_filesystem_is_an_error_not_sigbus(tiny_tmpfs):
    keep = [allocate(200 * 1024) for _ in range(3)]     # ~600 KiB of the 1 MiB
    with pytest.raises(OSError) as info:
        allocate(600 * 1024)
    assert info.value.errno == errno.ENOSPC
    # What was allocated is fully usable: every page was reserved, so touching it cannot SIGBUS.
    for block in keep:
        memoryview(block)[:] = b"\xff" * block.size
    # Exercise the fallocate path too: a child touching more than fits must get an error, not die.
    code = ("from shmproc._core import allocate\n"
            "try:\n    allocate(900*1024)\nexcept OSError as e:\n    print('ENOSPC' if e.errno == 28 else e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=JOIN,
                         env=dict(os.environ, SHMPROC_SHM_DIR=tiny_tmpfs))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ENOSPC"


def test_large_blocks_reserve_their_pages_on_a_tmpfs_smaller_than_memory(private_shm):
    used = shm_used_bytes()
    block = allocate(32 * MB)
    assert shm_used_bytes() - used >= 30 * MB
    del block


@pytest.fixture
def tmpfs_larger_than_memory(monkeypatch):
    size = (support_segments.memory_and_swap_bytes() >> 20) + 1024
    with shm_directory_on_tmpfs(monkeypatch, f"{size}m") as path:
        yield path


def test_large_blocks_get_their_pages_on_first_touch_where_the_tmpfs_outlasts_memory(
        tmpfs_larger_than_memory):
    """Such a tmpfs cannot fill up before memory does, so a first touch cannot SIGBUS for want of
    room and nothing is reserved: a page is allocated when first stored into, as for numpy."""
    used = shm_used_bytes()
    block = allocate(32 * MB)
    assert shm_used_bytes() - used < 1 * MB
    memoryview(block)[:] = b"\x01" * block.size
    assert shm_used_bytes() - used >= 32 * MB
    del block
    assert wait_until(lambda: shm_used_bytes() - used < 1 * MB, 5)
    segment = Segment.create(32 * MB)         # other segments (rings, arenas) always reserve
    assert shm_used_bytes() - used >= 30 * MB
    del segment
    free = os.statvfs(tmpfs_larger_than_memory).f_bavail * os.statvfs(tmpfs_larger_than_memory).f_frsize
    with pytest.raises(OSError) as info:        # more than the filesystem can hold: ENOSPC at once
        allocate(free + 64 * MB)
    assert info.value.errno == errno.ENOSPC


def test_large_blocks_reserve_their_pages_where_the_tmpfs_has_quotas(monkeypatch):
    """A quota can be reached long before memory runs out: reserve, as on a small tmpfs."""
    size = (support_segments.memory_and_swap_bytes() >> 20) + 1024
    with mounted_tmpfs(f"{size}m", "usrquota") as path:
        if path is None:
            pytest.skip("cannot mount a tmpfs with quotas here")
        monkeypatch.setenv("SHMPROC_SHM_DIR", path)
        used = shm_used_bytes()
        block = allocate(32 * MB)
        assert shm_used_bytes() - used >= 30 * MB
        del block


def test_large_blocks_reserve_their_pages_under_strict_overcommit(tmp_path):
    """vm.overcommit_memory 2 charges each page of a tmpfs file when it is allocated, so a first
    touch could fail however large the filesystem: pages are reserved. A child sees the setting
    changed in a mount namespace of its own (a file bound over the sysctl's); nothing else does."""
    size = (support_segments.memory_and_swap_bytes() >> 20) + 1024
    measure = ("import os\n"
               "from shmproc._core import allocate\n"
               "def used():\n"
               "    info = os.statvfs(os.environ['SHMPROC_SHM_DIR'])\n"
               "    return (info.f_blocks - info.f_bfree) * info.f_frsize\n"
               "before = used()\n"
               "block = allocate(32 << 20)\n"
               "print(used() - before)\n")
    strict = tmp_path / "overcommit_memory"
    strict.write_text("2\n")
    directory = tmp_path / "shm"
    directory.mkdir()
    shell = (f"mount -t tmpfs -o size={size}m,mode=0700 tmpfs {directory} || exit 77\n"
             f"SHMPROC_SHM_DIR={directory} {sys.executable} -c \"$0\" || exit 1\n"
             f"mount --bind {strict} /proc/sys/vm/overcommit_memory || exit 77\n"
             f"SHMPROC_SHM_DIR={directory} {sys.executable} -c \"$0\"\n")
    try:
        out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell,
                              measure], capture_output=True, text=True, timeout=JOIN)
    except FileNotFoundError:
        pytest.skip("no unshare here")
    if out.returncode == 77 or "unshare:" in out.stderr:
        pytest.skip("cannot mount in a namespace of our own here (not root?)")
    assert out.returncode == 0, out.stderr
    overcommitted, strict_mode = map(int, out.stdout.split())
    assert overcommitted < 1 * MB
    assert strict_mode >= 30 * MB


def test_block_round_trips_through_another_process(ctx):
    block = allocate(256)
    ready = ctx.Event()
    p = ctx.Process(target=support_segments.attach_and_sleep, args=(block.handle(), ready))
    p.start()
    try:
        assert ready.wait(JOIN)
        assert memoryview(block)[0] == 7
    finally:
        p.kill()
        p.join(JOIN)


def test_attach_fails_clearly_when_the_sender_is_gone():
    out = subprocess.run(
        [sys.executable, "-c",
         "from shmproc._core import allocate; b = allocate(1 << 17); print(repr(b.handle()))"],
        capture_output=True, text=True, timeout=JOIN, check=True)
    handle = eval(out.stdout)          # the handle of a process that has exited
    with pytest.raises(FileNotFoundError, match="has exited"):
        Block.attach(handle)


def test_attach_checks_the_segment_identity():
    block = allocate(1 << 17)
    (seg_id, size, (pid, fd, token)), offset, length = block.handle()
    other = Segment.create(size - 64)          # same size, another id, its own descriptor
    forged = ((b"\0" * 16, size, (pid, descriptor_of(other), token)), offset, length)
    with pytest.raises(FileNotFoundError, match="cannot attach"):
        Block.attach(forged)


def test_memory_is_returned_when_the_creator_is_killed(ctx, private_shm):
    used = shm_used_bytes()
    ready = ctx.Event()
    p = ctx.Process(target=support_segments.create_segment_then_die, args=(64 * MB, ready))
    p.start()
    assert ready.wait(JOIN)
    p.join(JOIN)
    assert p.exitcode == -signal.SIGKILL
    assert wait_until(lambda: shm_used_bytes() - used < 16 * MB, 5)


def test_memory_lives_while_any_process_of_the_tree_maps_it_then_is_freed(ctx, private_shm):
    """Kill -9 the creator while a child still maps the segment: the memory stays for the child,
    and is freed as soon as the child is gone too."""
    used = shm_used_bytes()
    script = (
        "import os, sys, time, multiprocessing as mp\n"
        "sys.path.insert(0, %r)\n"
        "import support_segments\n"
        "from shmproc._core import allocate\n"
        "if __name__ == '__main__':\n"
        "    ctx = mp.get_context(%r)\n"
        "    block = allocate(64 << 20)\n"
        "    ready = ctx.Event()\n"
        "    child = ctx.Process(target=support_segments.attach_and_sleep, args=(block.handle(), ready))\n"
        "    child.start()\n"
        "    ready.wait(20)\n"
        "    print(child.pid, flush=True)\n"
        "    time.sleep(60)\n"
    ) % (os.path.dirname(__file__), ctx.get_start_method())
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())
        assert shm_used_bytes() - used >= 60 * MB
        parent.kill()
        parent.wait(JOIN)
        time.sleep(0.2)
        assert shm_used_bytes() - used >= 60 * MB, "freed while a child still maps it"
        os.kill(child_pid, signal.SIGKILL)
        assert wait_until(lambda: shm_used_bytes() - used < 16 * MB, 5)
    finally:
        parent.kill()
        parent.wait(JOIN)
        try:
            os.kill(child_pid, signal.SIGKILL)
        except (ProcessLookupError, NameError, UnboundLocalError):
            pass


def test_a_block_pickles_as_its_handle():
    import pickle
    block = allocate(64)
    memoryview(block)[:3] = b"abc"
    clone = pickle.loads(pickle.dumps(block))
    assert bytes(memoryview(clone)[:3]) == b"abc"
    assert clone.address == block.address          # the same mapping, attached once
