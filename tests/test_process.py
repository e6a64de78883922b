"""shmproc.process: the Process API, under every start method, with real processes."""
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import support_process as support

from shmproc import context, parent_death, process
from shmproc.process import ProcessStateError

METHODS = ("fork", "spawn", "forkserver")
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(params=METHODS)
def shm_ctx(request):
    return context._default_context.get_context(request.param)


@pytest.fixture(params=("fork", "spawn"))
def shm_ctx_fork_spawn(request):
    return context._default_context.get_context(request.param)


def run(shm_ctx, target, *args, timeout=30, **kwargs):
    p = shm_ctx.Process(target=target, args=args, kwargs=kwargs)
    p.start()
    p.join(timeout)
    assert p.exitcode is not None, f"{p} did not end within {timeout} s"
    return p


def run_async(shm_ctx, target, *args):
    p = shm_ctx.Process(target=target, args=args)
    p.start()
    return p


def receive(shm_ctx, target, *args, timeout=30):
    """Run target(conn, *args) in a child and return what it sent (through multiprocessing's Pipe:
    the process is under test here, not the pipe)."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    p = shm_ctx.Process(target=target, args=(writer, *args))
    p.start()
    writer.close()
    try:
        assert reader.poll(timeout), f"{p} sent nothing within {timeout} s"
        return p, reader.recv()
    finally:
        p.join(timeout)
        reader.close()


def check_sentinel_then_terminate(shm_ctx):
    """The sentinel is not ready while the child runs, is after terminate(); returns the process."""
    p = shm_ctx.Process(target=support.sleep_for, args=(30,))
    p.start()
    assert multiprocessing.connection.wait([p.sentinel], timeout=0) == []
    p.terminate()
    assert multiprocessing.connection.wait([p.sentinel], timeout=10) == [p.sentinel]
    p.join(10)
    assert p.exitcode == -signal.SIGTERM
    return p


class TestExitCodes:

    def test_normal_return_is_zero(self, shm_ctx):
        assert run(shm_ctx, support.do_nothing).exitcode == 0

    @pytest.mark.parametrize("code, expected", [(0, 0), (3, 3), (None, 0), (255, 255)])
    def test_sys_exit_code(self, shm_ctx, code, expected):
        assert run(shm_ctx, support.exit_with, code).exitcode == expected

    # A forkserver child writes to the stderr the fork server was started with (by whichever test
    # came first), so what it prints is checked under fork and spawn only.

    def test_sys_exit_message_goes_to_stderr_and_gives_one(self, shm_ctx, capfd):
        assert run(shm_ctx, support.exit_with, "leaving now").exitcode == 1
        if shm_ctx.get_start_method() != "forkserver":
            assert "leaving now" in capfd.readouterr().err

    def test_exception_prints_traceback_and_gives_one(self, shm_ctx, capfd):
        p = run(shm_ctx, support.raise_value_error)
        assert p.exitcode == 1
        if shm_ctx.get_start_method() != "forkserver":
            err = capfd.readouterr().err
            assert f"Process {p.name}:" in err
            assert "Traceback" in err and "ValueError: raised in the child on purpose" in err

    def test_terminate_gives_minus_sigterm(self, shm_ctx):
        p = shm_ctx.Process(target=support.sleep_for, args=(30,))
        p.start()
        p.terminate()
        p.join(10)
        assert p.exitcode == -signal.SIGTERM
        assert "exitcode=-SIGTERM" in repr(p)

    def test_kill_gives_minus_sigkill(self, shm_ctx):
        p = shm_ctx.Process(target=support.sleep_for, args=(30,))
        p.start()
        p.kill()
        p.join(10)
        assert p.exitcode == -signal.SIGKILL

    def test_terminate_after_exit_is_harmless(self, shm_ctx):
        p = run(shm_ctx, support.do_nothing)
        p.terminate()
        p.kill()
        assert p.exitcode == 0

    def test_child_waits_for_its_non_daemonic_threads(self, shm_ctx_fork_spawn):
        started = time.monotonic()
        p = run(shm_ctx_fork_spawn, support.sleep_in_thread_then_exit, 0.3)
        assert p.exitcode == 0
        assert time.monotonic() - started >= 0.3


class TestAttributes:

    def test_identity_seen_from_both_sides(self, shm_ctx):
        p, seen = receive(shm_ctx, support.report_identity)
        assert p.exitcode == 0
        assert seen["pid"] == p.pid == p.ident
        assert seen["ppid"] == os.getpid() or shm_ctx.get_start_method() == "forkserver"
        assert seen["name"] == p.name
        assert seen["ident"] == p.pid
        assert seen["authkey"] == bytes(p.authkey) == bytes(multiprocessing.current_process().authkey)
        assert seen["parent_name"] == multiprocessing.current_process().name
        assert seen["parent_pid"] == os.getpid()
        assert seen["parent_alive"] is True
        assert seen["children"] == 0
        assert seen["stdin_closed_or_devnull"]

    def test_names_and_repr(self, shm_ctx):
        p = shm_ctx.Process(target=support.do_nothing)
        assert p.name.startswith(type(p).__name__ + "-")
        assert "initial" in repr(p)
        named = shm_ctx.Process(target=support.do_nothing, name="worker")
        assert named.name == "worker"
        named.name = "renamed"
        assert named.name == "renamed"
        named.start()
        named.join(10)
        assert "stopped" in repr(named) and "renamed" in repr(named)

    def test_pid_and_exitcode_before_start(self, shm_ctx):
        p = shm_ctx.Process(target=support.do_nothing)
        assert p.pid is None and p.ident is None and p.exitcode is None
        assert not p.is_alive()
        with pytest.raises(ValueError, match="not started"):
            p.sentinel

    def test_daemon_flag(self, shm_ctx):
        p = shm_ctx.Process(target=support.do_nothing, daemon=True)
        assert p.daemon is True
        p2 = shm_ctx.Process(target=support.do_nothing)
        assert p2.daemon is False
        p2.daemon = True
        assert p2.daemon
        p2.start()
        with pytest.raises(AssertionError):
            p2.daemon = False
        p2.join(10)

    def test_daemon_and_authkey_are_each_process_own(self, shm_ctx):
        first = shm_ctx.Process(target=support.do_nothing)
        second = shm_ctx.Process(target=support.do_nothing)
        first.daemon = True
        first.authkey = b"first key"
        assert first.daemon and bytes(first.authkey) == b"first key"
        assert not second.daemon
        assert not multiprocessing.current_process().daemon
        assert bytes(second.authkey) == bytes(multiprocessing.current_process().authkey)
        assert bytes(multiprocessing.current_process().authkey) != b"first key"

    def test_default_names_follow_multiprocessing(self, shm_ctx):
        p = shm_ctx.Process(target=support.do_nothing)
        assert p.name == f"{type(p).__name__}-{p._identity[0]}"
        assert p._name == p.name and repr(p).startswith(f"<{type(p).__name__} name='{p.name}'")

    def test_daemon_seen_in_child(self, shm_ctx):
        reader, writer = multiprocessing.Pipe(duplex=False)
        p = shm_ctx.Process(target=support.report_identity, args=(writer,), daemon=True)
        p.start()
        writer.close()
        assert reader.poll(30)
        assert reader.recv()["daemon"] is True
        p.join(10)

    def test_sentinel_works_with_connection_wait(self, shm_ctx):
        p = shm_ctx.Process(target=support.sleep_for, args=(0.3,))
        p.start()
        assert multiprocessing.connection.wait([p.sentinel], timeout=0) == []
        assert multiprocessing.connection.wait([p.sentinel], timeout=10) == [p.sentinel]
        p.join(10)
        assert p.exitcode == 0

    def test_sentinel_asked_for_after_the_end_is_ready(self, shm_ctx):
        p = run(shm_ctx, support.do_nothing)
        # (Not timeout=0: the fork server closes its end of the sentinel pipe just after it has
        # reported the exit status.)
        assert multiprocessing.connection.wait([p.sentinel], timeout=10) == [p.sentinel]
        assert p.sentinel == p.sentinel

    def test_terminate_through_an_open_sentinel(self, shm_ctx):
        check_sentinel_then_terminate(shm_ctx)

    def test_join_with_timeout_when_children_are_reaped_by_the_system(self):
        # With SIGCHLD ignored the kernel reaps children itself: no exit status (as under
        # multiprocessing, which then also reports the process alive forever), but join() must
        # neither fail nor wait out its timeout.
        previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        try:
            p = context.ForkProcess(target=support.do_nothing)
            p.start()
            time.sleep(0.2)
            started = time.monotonic()
            p.join(5)
            assert time.monotonic() - started < 4
            assert p.exitcode is None
        finally:
            signal.signal(signal.SIGCHLD, previous)
            # It would stay in multiprocessing's table of children forever (no status to read).
            multiprocessing.process._children.discard(p)

    def test_is_alive(self, shm_ctx):
        p = shm_ctx.Process(target=support.sleep_for, args=(30,))
        p.start()
        assert p.is_alive()
        p.terminate()
        p.join(10)
        assert not p.is_alive()

    def test_join_timeout_returns_while_running(self, shm_ctx):
        p = shm_ctx.Process(target=support.sleep_for, args=(30,))
        p.start()
        started = time.monotonic()
        p.join(0.2)
        elapsed = time.monotonic() - started
        assert p.exitcode is None and p.is_alive()
        assert 0.15 <= elapsed < 10
        p.join(0)
        assert p.exitcode is None
        p.kill()
        p.join(10)

    def test_active_children(self, shm_ctx):
        p = shm_ctx.Process(target=support.sleep_for, args=(30,))
        p.start()
        assert p in multiprocessing.active_children()
        assert p in process.active_children()
        p.terminate()
        p.join(10)
        assert p not in multiprocessing.active_children()

    def test_current_and_parent_process_in_parent(self):
        assert process.current_process() is multiprocessing.current_process()
        assert process.parent_process() is multiprocessing.parent_process()

    def test_grandchild_names_restart(self, shm_ctx_fork_spawn):
        p, (name, exitcode) = receive(shm_ctx_fork_spawn, support.start_grandchild_and_report, "fork")
        assert exitcode == 0
        assert name == f"ForkProcess-{':'.join(map(str, p._identity))}:1"

    def test_close_releases_the_sentinel(self, shm_ctx):
        p = run(shm_ctx, support.do_nothing)
        sentinel = p.sentinel
        p.close()
        with pytest.raises(ValueError):
            p.sentinel
        with pytest.raises(ValueError):
            p.is_alive()
        p.close()   # twice is fine
        if shm_ctx.get_start_method() == "fork":
            with pytest.raises(OSError):
                os.fstat(sentinel)


class Doubler(context.ForkProcess):
    def __init__(self, conn, value):
        super().__init__()
        self.conn = conn
        self.value = value

    def run(self):
        self.conn.send(self.value * 2)
        self.conn.close()


class SpawnDoubler(context.SpawnProcess):
    run = Doubler.run

    def __init__(self, conn, value):
        super().__init__()
        self.conn = conn
        self.value = value


class TestTargets:

    def test_args_and_kwargs(self, shm_ctx):
        _, (args, kwargs) = receive(shm_ctx, support.send_args, 1, "two", [3])
        assert args == (1, "two", [3]) and kwargs == {}
        reader, writer = multiprocessing.Pipe(duplex=False)
        p = shm_ctx.Process(target=support.send_args, args=(writer, 5), kwargs={"key": {"nested": 1}})
        p.start()
        writer.close()
        assert reader.poll(30)
        assert reader.recv() == ((5,), {"key": {"nested": 1}})
        p.join(10)

    @pytest.mark.parametrize("cls", [Doubler, SpawnDoubler])
    def test_subclass_overriding_run(self, cls):
        reader, writer = multiprocessing.Pipe(duplex=False)
        p = cls(writer, 21)
        p.start()
        writer.close()
        assert reader.poll(30)
        assert reader.recv() == 42
        p.join(10)
        assert p.exitcode == 0

    def test_no_target_runs_nothing(self, shm_ctx):
        assert run(shm_ctx, None).exitcode == 0

    def test_target_closure_under_fork(self):
        box = []

        def closure():
            box.append(1)   # in the child's copy of memory
            sys.exit(7 if box else 0)

        assert run(context._default_context.get_context("fork"), closure).exitcode == 7
        assert box == []


class TestBadInput:

    def test_start_twice(self, shm_ctx):
        p = shm_ctx.Process(target=support.do_nothing)
        p.start()
        with pytest.raises(ProcessStateError, match="twice"):
            p.start()
        # Code written for multiprocessing catches AssertionError; code written like threading
        # catches RuntimeError: both work.
        with pytest.raises(AssertionError):
            p.start()
        with pytest.raises(RuntimeError):
            p.start()
        p.join(10)

    def test_checks_survive_python_dash_o(self):
        code = ("from shmproc import context, process\n"
                "p = context.ForkProcess(target=int)\n"
                "try:\n"
                "    p.join()\n"
                "except process.ProcessStateError:\n"
                "    print('refused')\n")
        result = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True,
                                text=True, timeout=60)
        assert result.stdout.strip() == "refused", result.stderr

    def test_join_before_start(self, shm_ctx):
        with pytest.raises(ProcessStateError, match="started process"):
            shm_ctx.Process(target=support.do_nothing).join()

    def test_negative_join_timeout_means_zero(self, shm_ctx):
        # multiprocessing's rule: a negative timeout does not wait.
        p = shm_ctx.Process(target=support.sleep_for, args=(30,))
        p.start()
        try:
            p.join(-1)
            assert p.is_alive() and p.exitcode is None
            with pytest.raises(ValueError):
                p.join(float("nan"))
        finally:
            p.kill()
            p.join(10)

    def test_close_while_running(self, shm_ctx):
        p = shm_ctx.Process(target=support.sleep_for, args=(30,))
        p.start()
        try:
            with pytest.raises(ValueError, match="still running"):
                p.close()
        finally:
            p.kill()
            p.join(10)
        p.close()

    def test_start_after_close(self, shm_ctx):
        p = shm_ctx.Process(target=support.do_nothing)
        p.close()
        with pytest.raises(ValueError, match="closed"):
            p.start()

    def test_group_must_be_none(self, shm_ctx):
        with pytest.raises(ValueError, match="group"):
            shm_ctx.Process(group="workers", target=support.do_nothing)

    @pytest.mark.parametrize("method", ["spawn", "forkserver"])
    def test_unpicklable_target_fails_in_start(self, method):
        shm_ctx = context._default_context.get_context(method)
        before = set(multiprocessing.active_children())
        p = shm_ctx.Process(target=lambda: None, name="unpicklable")
        with pytest.raises(pickle.PicklingError, match="'unpicklable'.*must be picklable") as info:
            p.start()
        assert info.value.__cause__ is not None
        assert p.pid is None
        assert set(multiprocessing.active_children()) == before

    def test_unpicklable_argument_fails_in_start(self):
        shm_ctx = context._default_context.get_context("spawn")
        p = shm_ctx.Process(target=support.send_args, args=(threading.Lock(),))
        with pytest.raises(pickle.PicklingError, match="must be picklable"):
            p.start()
        assert p.pid is None

    def test_join_from_another_process_is_refused(self):
        p = context.ForkProcess(target=support.do_nothing)
        p.start()
        p.join(10)
        p._parent_pid = -1
        with pytest.raises(ProcessStateError, match="child process"):
            p.join()
        p._parent_pid = os.getpid()


class TestSharedObjects:
    """shmproc's objects handed to a shmproc child as arguments, under every start method."""

    def test_synchronization_primitives(self, shm_ctx):
        lock, event, done = shm_ctx.Lock(), shm_ctx.Event(), shm_ctx.Event()
        semaphore = shm_ctx.Semaphore(1)
        p = shm_ctx.Process(target=support.use_primitives, args=(lock, event, semaphore, done))
        p.start()
        event.set()
        assert done.wait(30)
        p.join(10)
        assert p.exitcode == 0

    def test_reentrant_lock_condition_barrier(self, shm_ctx):
        rlock, condition, barrier = shm_ctx.RLock(), shm_ctx.Condition(), shm_ctx.Barrier(2, timeout=30)
        p = run_async(shm_ctx, support.use_more_primitives, rlock, condition, barrier)
        assert barrier.wait() in (0, 1)
        p.join(30)
        assert p.exitcode == 0

    def test_value_and_array(self, shm_ctx):
        value = shm_ctx.Value("i", 41)
        array = shm_ctx.Array("d", [1.0, 2.0, 3.0])
        p = run(shm_ctx, support.bump_shared, value, array)
        assert p.exitcode == 0
        assert value.value == 42
        assert list(array) == [-1.0, -2.0, -3.0]


    def test_queue_and_pipe(self, shm_ctx):
        queue = shm_ctx.Queue()
        reader, writer = shm_ctx.Pipe(duplex=False)
        p = run_async(shm_ctx, support.echo_through, queue, writer)
        queue.put({"item": 1})
        assert reader.poll(30)
        assert reader.recv() == {"item": 1}
        p.join(30)
        assert p.exitcode == 0

    def test_shared_ndarray_by_reference(self, shm_ctx):
        ndarray = pytest.importorskip("shmproc.ndarray")
        array = ndarray.zeros((4, 3))
        array[:] = 1.5
        p = run(shm_ctx, support.negate_in_place, array[1:3])
        assert p.exitcode == 0
        assert array[0].tolist() == [1.5] * 3 and array[3].tolist() == [1.5] * 3
        assert array[1:3].tolist() == [[-1.5] * 3] * 2


class TestLogging:

    def test_get_logger_is_multiprocessings(self):
        assert context._default_context.get_logger() is multiprocessing.get_logger()
        assert context._default_context.get_logger().name == "multiprocessing"

    def test_log_to_stderr_shows_child_messages(self, shm_ctx_fork_spawn, capfd):
        logger = context._default_context.log_to_stderr(logging.INFO)
        handler = logger.handlers[-1]
        try:
            assert logger.level == logging.INFO
            p = run(shm_ctx_fork_spawn, support.log_something)
            assert p.exitcode == 0
            err = capfd.readouterr().err
            assert f"[INFO/{p.name}] hello from the child" in err
            assert f"[INFO/{p.name}] child process calling self.run()" in err
        finally:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
            multiprocessing.util._log_to_stderr = False


def _gone(pid, timeout):
    """True once pid is no longer a running process (a zombie waiting for init counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def _start_script(*args):
    return subprocess.Popen([sys.executable, os.path.join(HERE, "support_lifetime.py"), *args],
                            stdout=subprocess.PIPE, text=True, cwd=HERE)


class TestLifetime:

    @pytest.mark.parametrize("method", METHODS)
    @pytest.mark.parametrize("options", [(), ("thread",)])
    def test_children_die_with_a_killed_parent(self, method, options):
        parent = _start_script("parent-death", method, *options)
        try:
            child_pid = int(parent.stdout.readline())
            assert psutil.pid_exists(child_pid)
            parent.kill()
            parent.wait(10)
            assert _gone(child_pid, 2), "the child outlived its SIGKILLed parent"
        finally:
            parent.kill()
            parent.wait(10)
            parent.stdout.close()

    @pytest.mark.parametrize("method", METHODS)
    def test_every_child_dies_with_a_killed_parent_when_asked(self, method):
        self.test_children_die_with_a_killed_parent(method, ("non-daemonic", "every-child"))

    def test_spawned_children_with_the_core_loaded_die_with_a_killed_parent(self):
        # A spawned child whose target uses shared objects has the core loaded when it is armed,
        # and is armed with prctl through it rather than with a watcher thread.
        self.test_children_die_with_a_killed_parent("spawn", ("core-prctl",))

    @pytest.mark.parametrize("options", [("opt-out",), ("non-daemonic",)])
    def test_children_that_outlive_a_killed_parent(self, options):
        # Opted out, or non-daemonic: as with multiprocessing, the child outlives its parent.
        parent = _start_script("parent-death", "fork", *options)
        try:
            child_pid = int(parent.stdout.readline())
            parent.kill()
            parent.wait(10)
            assert not _gone(child_pid, 1.5), "the child died with its parent"
        finally:
            parent.kill()
            parent.wait(10)
            parent.stdout.close()
            try:
                os.kill(child_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @pytest.mark.parametrize("method", ("fork", "spawn"))
    def test_exit_terminates_daemons_and_joins_the_others(self, method, tmp_path):
        marker = tmp_path / "marker"
        parent = _start_script("at-exit", method, str(marker))
        try:
            out, _ = parent.communicate(timeout=30)
        finally:
            parent.kill()
        daemonic_pid, joined_pid = map(int, out.split())
        assert parent.returncode == 0
        assert marker.read_text() == "joined", "the non-daemonic child was not joined"
        assert _gone(daemonic_pid, 2) and _gone(joined_pid, 2)

    def test_parent_death_setting(self):
        assert parent_death.get_parent_death_signal() == signal.SIGKILL
        try:
            parent_death.set_parent_death_signal(signal.SIGTERM)
            assert parent_death.get_parent_death_signal() is signal.SIGTERM
            assert parent_death.get_daemonic_only() is True
            parent_death.set_parent_death_signal(signal.SIGTERM, daemonic_only=False)
            assert parent_death.get_daemonic_only() is False
            parent_death.set_parent_death_signal(None)
            assert parent_death.get_parent_death_signal() is None
            with pytest.raises(ValueError):
                parent_death.set_parent_death_signal(12345)
        finally:
            parent_death.set_parent_death_signal(signal.SIGKILL)
        assert parent_death.get_daemonic_only() is True

    def test_child_forked_from_a_finished_thread_survives_it(self):
        # PR_SET_PDEATHSIG fires when the forking *thread* ends: a child started from a
        # short-lived thread must not die with that thread.
        p = context.ForkProcess(target=support.sleep_for, args=(1,))
        starter = threading.Thread(target=p.start)
        starter.start()
        starter.join(10)
        time.sleep(0.3)
        assert p.is_alive()
        p.join(10)
        assert p.exitcode == 0


class TestThreads:

    @pytest.mark.parametrize("method", ["fork", "spawn"])
    def test_processes_started_from_several_threads_at_once(self, method):
        shm_ctx = context._default_context.get_context(method)
        rounds = 5 if method == "fork" else 1
        exitcodes = []

        def start_and_join():
            for _ in range(rounds):
                p = shm_ctx.Process(target=support.exit_with, args=(4,))
                p.start()
                p.join(30)
                exitcodes.append(p.exitcode)

        threads = [threading.Thread(target=start_and_join) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert exitcodes == [4] * (4 * rounds)


class TestWithoutPidfds:
    """The fork path falls back to multiprocessing's pipes where pidfds are missing."""

    @pytest.fixture(autouse=True)
    def no_pidfds(self, monkeypatch):
        from shmproc import popen_fork
        monkeypatch.setattr(popen_fork, "HAVE_PIDFD", False)

    def test_lifecycle(self):
        shm_ctx = context._default_context.get_context("fork")
        p, seen = receive(shm_ctx, support.report_identity)
        assert p.exitcode == 0 and seen["parent_alive"] and seen["pid"] == p.pid
        check_sentinel_then_terminate(shm_ctx).close()


class TestDescriptorsClosedBehindOurBack:
    """The fork path keeps /dev/null and its own pidfd open for its children; code that closes
    descriptors it does not own (daemonizing, say) must not make a child read some other file."""

    def test_children_still_get_dev_null_and_a_parent_sentinel(self):
        shm_ctx = context._default_context.get_context("fork")
        assert run(shm_ctx, support.do_nothing).exitcode == 0
        inherited = process._fork_inheritance
        os.close(inherited.stdin_fd)
        os.close(inherited.sentinel)
        reused = [os.open(__file__, os.O_RDONLY) for _ in range(2)]   # take the numbers back
        try:
            _, (stdin_is_dev_null, parent_alive) = receive(shm_ctx, support.report_stdin_and_parent)
            assert stdin_is_dev_null and parent_alive
            assert process._fork_inheritance is not inherited
        finally:
            for fd in reused:
                os.close(fd)


class TestSetExecutable:

    def test_spawn_uses_the_executable_set(self, tmp_path):
        from multiprocessing import spawn
        marker = tmp_path / "used"
        wrapper = tmp_path / "python-wrapper"
        wrapper.write_text(f'#!/bin/sh\necho used > "{marker}"\nexec "{sys.executable}" "$@"\n')
        wrapper.chmod(0o755)
        shm_ctx = context._default_context.get_context("spawn")
        previous = spawn.get_executable()
        shm_ctx.set_executable(str(wrapper))
        try:
            assert run(shm_ctx, support.do_nothing).exitcode == 0
        finally:
            shm_ctx.set_executable(previous)
        assert marker.read_text().strip() == "used"
