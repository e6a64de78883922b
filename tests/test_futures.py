"""shmproc.futures.ProcessPoolExecutor: concurrent.futures' contract, and a dead worker failing
only its own future. (CPython's test_concurrent_futures is not shipped with this interpreter's
test package, so the behaviours it checks of the executor are written here.)"""
import asyncio
import concurrent.futures as cf
import gc
import os
import subprocess
import sys
import time
import weakref
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

import pytest
import support_pool as sp

import shmproc
from shmproc.futures import (
    BrokenWorkerError,
    ProcessPoolExecutor,
    ResultUnpicklingError,
    TaskTimeoutError,
)
from shmproc.pool import WorkerLostError


@pytest.fixture(params=["fork", "spawn"])
def executor(request):
    with ProcessPoolExecutor(2, mp_context=shmproc.get_context(request.param)) as ex:
        yield ex


def test_submit_map_wait_as_completed(executor):
    futures = [executor.submit(sp.add, i, y=1) for i in range(20)]
    done, not_done = cf.wait(futures, timeout=30)
    assert not not_done
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=30)) == list(range(1, 21))
    assert list(executor.map(sp.add, range(5), range(5))) == [0, 2, 4, 6, 8]
    assert list(executor.map(sp.square, range(30), chunksize=4)) == [x * x for x in range(30)]
    assert list(executor.map(sp.square, iter(range(30)), buffersize=3)) == [x * x for x in
                                                                            range(30)]
    with pytest.raises(ValueError):
        list(executor.map(sp.raise_value_error, [1]))


def test_waiting_on_futures_that_are_not_done_yet():
    # The executor's futures make their condition only when waited on: wait, as_completed,
    # result(timeout), callbacks and cancel() while a task still runs.
    with ProcessPoolExecutor(1) as ex:
        slow = ex.submit(sp.sleep_if, 1, 1, 0.5)
        queued = ex.submit(sp.square, 4)
        called = []
        slow.add_done_callback(called.append)
        assert not slow.done() and not queued.cancelled()
        with pytest.raises(cf.TimeoutError):
            slow.result(timeout=0.01)
        done, not_done = cf.wait([slow, queued], timeout=30, return_when=cf.FIRST_COMPLETED)
        assert slow in done
        assert [f.result() for f in cf.as_completed([queued, slow], timeout=30)] in ([16, 1],
                                                                                  [1, 16])
        assert called == [slow] and not slow.cancel() and slow.running() is False
        # At most two tasks are in a worker's hands: the fourth is still pending.
        blockers = [ex.submit(sp.sleep_if, 1, 1, 0.2) for _ in range(3)]
        waiting = ex.submit(sp.square, 5)
        assert waiting.cancel() and waiting.cancelled() and waiting.done()
        with pytest.raises(cf.CancelledError):
            waiting.result()
        assert [b.result(timeout=30) for b in blockers] == [1, 1, 1]
        failing = ex.submit(sp.raise_value_error, 1)
        assert isinstance(failing.exception(timeout=30), ValueError)
        with pytest.raises(ValueError):
            failing.result()


def test_futures_work_with_asyncio(executor):
    async def main():
        return await asyncio.wrap_future(executor.submit(sp.square, 9))
    assert asyncio.run(main()) == 81


def test_a_dead_worker_breaks_only_its_future(executor):
    futures = [executor.submit(sp.kill_self_at, i, 4, "exit") for i in range(10)]
    cf.wait(futures, timeout=30)
    error = futures[4].exception()
    assert isinstance(error, BrokenProcessPool) and isinstance(error, BrokenWorkerError)
    assert isinstance(error, WorkerLostError) and error.exitcode == 7
    assert [f.result() for i, f in enumerate(futures) if i != 4] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert executor.submit(sp.square, 3).result(timeout=30) == 9


def test_retries_and_task_timeout(tmp_path):
    flag = str(tmp_path / "died")
    with ProcessPoolExecutor(2, retries=1) as ex:
        assert ex.submit(sp.kill_self_once, 1, 1, flag).result(timeout=30) == 1
    with ProcessPoolExecutor(1, task_timeout=0.5) as ex:
        stuck = ex.submit(sp.sleep_if, 1, 1, 60)
        with pytest.raises(TaskTimeoutError):
            stuck.result(timeout=30)
        assert isinstance(stuck.exception(), TimeoutError)
        assert ex.submit(sp.square, 2).result(timeout=30) == 4


def test_map_timeout_is_for_the_whole_iteration(executor):
    results = executor.map(sp.sleep_if, [1, 2], [1, 1], [5, 5], timeout=0.2)
    with pytest.raises(cf.TimeoutError):
        list(results)


def test_shutdown_and_cancel():
    ex = ProcessPoolExecutor(1)
    futures = [ex.submit(sp.sleep_if, 1, 1, 0.3) for _ in range(6)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(f.done() for f in futures)
    assert any(f.cancelled() for f in futures)
    assert all(f.result() == 1 for f in futures if not f.cancelled())
    with pytest.raises(RuntimeError):
        ex.submit(sp.square, 1)
    ex.shutdown()


def test_terminate_and_kill_workers():
    for stop in ("terminate_workers", "kill_workers"):
        ex = ProcessPoolExecutor(2)
        stuck = ex.submit(sp.sleep_if, 1, 1, 60)
        time.sleep(0.1)
        getattr(ex, stop)()
        with pytest.raises(BrokenProcessPool):
            stuck.result(timeout=10)
        with pytest.raises(RuntimeError):
            ex.submit(sp.square, 1)


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        ProcessPoolExecutor(0)
    with pytest.raises(ValueError):
        ProcessPoolExecutor(1, max_tasks_per_child=0)
    with pytest.raises(ValueError):
        ProcessPoolExecutor(1, task_timeout=-2)
    with ProcessPoolExecutor(1) as ex:
        with pytest.raises(TypeError):
            ex.submit(3)
        with pytest.raises(ValueError):
            ex.map(sp.square, [1], chunksize=0)


def test_max_tasks_per_child_recycles_workers():
    with ProcessPoolExecutor(1, max_tasks_per_child=2) as ex:
        pids = [ex.submit(sp.pid_of_worker, i).result(timeout=30) for i in range(6)]
        assert len(set(pids)) == 3
        assert os.getpid() not in pids


def test_initializer():
    with ProcessPoolExecutor(2, initializer=sp.initializer_sets, initargs=(5,)) as ex:
        assert set(ex.map(sp.read_initialized, range(6))) == {5}


def test_results_that_do_not_travel_fail_their_future_as_the_standard_executor(executor):
    # A result that does not pickle: the future gets that error itself (the Pool reports
    # MaybeEncodingError), with the worker's traceback as its cause, as the standard executor.
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        executor.submit(sp.return_unpicklable, 1).result(timeout=30)
    assert isinstance(info.value.__cause__, _RemoteTraceback)
    assert "__reduce__" in str(info.value.__cause__)
    # SystemExit raised while pickling a result reaches the future; the worker lives on.
    with pytest.raises(SystemExit):
        executor.submit(sp.return_exits_at_pickle, 1).result(timeout=30)
    # A result that does not unpickle here: a BrokenProcessPool (what the standard executor
    # raises) caused by the unpickling error, SystemExit included; the executor goes on.
    for func, cause in ((sp.return_fails_to_unpickle, RuntimeError),
                        (sp.return_exits_at_unpickle, SystemExit)):
        with pytest.raises(BrokenProcessPool) as broken:
            executor.submit(func, 1).result(timeout=30)
        assert isinstance(broken.value, ResultUnpicklingError)
        assert isinstance(broken.value.__cause__, cause)
    with pytest.raises(ResultUnpicklingError):
        list(executor.map(sp.return_fails_to_unpickle, [1]))
    assert list(executor.map(sp.square, range(10))) == [x * x for x in range(10)]
    # No worker died of any of it.
    assert all(slot["restarts"] == 0 for slot in executor.stats())


@pytest.mark.parametrize("warm_up", [0, 3000])
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_cancel_futures_cancels_the_calls_no_worker_started(method, warm_up):
    # The calls submitted first are in the workers' windows (they run); the others wait in the
    # parent and are cancelled, as with the standard executor's call queue. After many tiny calls
    # (warm_up) the first slow ones go out in batches sized for tiny ones: the workers are told
    # to skip those they have not started, which are cancelled too.
    ex = ProcessPoolExecutor(2, mp_context=shmproc.get_context(method))
    for future in [ex.submit(sp.square, i) for i in range(warm_up)]:
        future.result(timeout=30)
    futures = [ex.submit(sp.sleep_if, 1, 1, 0.1) for _ in range(30)]
    ex.shutdown(wait=True, cancel_futures=True)
    cancelled = [f for f in futures if f.cancelled()]
    ran = [f for f in futures if not f.cancelled()]
    assert len(cancelled) >= 15
    assert ran and futures[0] in ran
    assert all(f.done() and f.result(timeout=0) == 1 for f in ran)
    for future in cancelled:
        with pytest.raises(cf.CancelledError):
            future.result(timeout=0)


def test_a_second_shutdown_closes_nothing_of_others():
    # shutdown() twice used to close the wake-up pipe's descriptors twice: by then their numbers
    # may belong to anything else (another executor's pipe, whose pool thread then failed).
    ex = ProcessPoolExecutor(1)
    assert ex.submit(sp.square, 3).result(timeout=30) == 9
    ex.shutdown()
    pipes = [os.pipe() for _ in range(16)]      # take the lowest free numbers, the freed ones
    try:
        ex.shutdown()
        ex.__del__()
        for read, write in pipes:
            os.fstat(read)
            os.fstat(write)
    finally:
        for read, write in pipes:
            os.close(read)
            os.close(write)


_EXIT_SCRIPT = """
import sys, time
import shmproc
from shmproc.futures import ProcessPoolExecutor


def sleep_and_print(seconds, message):
    time.sleep(seconds)
    print(message, flush=True)


def use_and_leave(method, drop):
    executor = ProcessPoolExecutor(2, mp_context=shmproc.get_context(method))
    executor.submit(sleep_and_print, 0.3, "apple")
    if drop:
        del executor                      # collected: shutdown(wait=False)
    else:
        globals()["kept"] = executor      # still running when the interpreter exits


if __name__ == "__main__":
    method, drop, where = sys.argv[1], sys.argv[2] == "drop", sys.argv[3]
    if where == "here":
        use_and_leave(method, drop)
    else:                                 # in a spawned child, which exits by its own path
        child = shmproc.get_context("spawn").Process(target=use_and_leave, args=(method, drop))
        child.start()
        child.join(60)
        print("child", child.exitcode, flush=True)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_an_executor_left_running_finishes_its_calls_at_exit(method, tmp_path):
    # As the standard executor: at interpreter exit (or a child's), an executor not shut down, or
    # dropped, runs its calls to the end and stops its workers; the exit neither hangs (workers
    # replaced under multiprocessing's exit function) nor kills the calls.
    script = tmp_path / "leave_executor.py"
    script.write_text(_EXIT_SCRIPT)
    for drop in ("keep", "drop"):
        for where in ("here", "child"):
            run = subprocess.run([sys.executable, str(script), method, drop, where],
                                 capture_output=True, text=True, timeout=60)
            assert run.returncode == 0, run.stderr
            assert not run.stderr, (drop, where, run.stderr)
            assert "apple" in run.stdout.split(), (drop, where, run.stdout)
            if where == "child":
                assert "child 0" in run.stdout, run.stderr


def test_a_finished_future_does_not_keep_its_arguments(executor):
    argument = sp.Token()
    seen = weakref.ref(argument)
    future = executor.submit(sp.identity, argument)
    assert type(future.result(timeout=30)) is sp.Token
    del argument
    gc.collect()
    assert future.done() and seen() is None
