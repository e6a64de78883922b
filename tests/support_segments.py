"""Module-level child targets for the segment tests (spawned children import them), and a private
tmpfs for tests that fill or measure shared memory (segments, queues)."""
import contextlib
import os
import signal
import subprocess
import tempfile
import time

import pytest


def attach_and_sleep(block_handle, ready):
    from shmproc._core import Block
    block = Block.attach(block_handle)
    memoryview(block)[0] = 7
    ready.set()
    time.sleep(60)


def create_segment_then_die(size, ready):
    from shmproc._core import allocate
    block = allocate(size)
    memoryview(block)[:] = b"\x01" * len(memoryview(block))
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def mounted_tmpfs(size, options=""):
    """A tmpfs of our own (needs root, as CI and this machine have); None where mounting fails.
    options: more mount options, comma-separated."""
    path = tempfile.mkdtemp(prefix="shmproc-tmpfs-")
    extra = f",{options}" if options else ""
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700{extra}", "tmpfs", path],
                      capture_output=True).returncode != 0:
        os.rmdir(path)
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", path], check=True)   # lazily: a dying block may still map it
        os.rmdir(path)


@contextlib.contextmanager
def shm_directory_on_tmpfs(monkeypatch, size, options=""):
    """Segments (and queues) made meanwhile live on a tmpfs of that size; where none can be
    mounted, the test is skipped."""
    with mounted_tmpfs(size, options) as path:
        if path is None:
            pytest.skip("cannot mount a tmpfs here (not root?)")
        monkeypatch.setenv("SHMPROC_SHM_DIR", path)
        yield path


def memory_and_swap_bytes():
    """What a tmpfs would have to hold to fill up before the machine's memory does."""
    swap_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("SwapTotal:"):
                swap_kib = int(line.split()[1])
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") + swap_kib * 1024
