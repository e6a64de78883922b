"""shmproc.futures.ProcessPoolExecutor: concurrent.futures' contract, and a dead worker failing
only its own future. (CPython's test_concurrent_futures is not shipped with this interpreter's
test package, so the behaviours it checks of the executor are written here.)"""
import asyncio
import concurrent.futures as cf
import os
import time
from concurrent.futures.process import BrokenProcessPool

import pytest
import support_pool as sp

import shmproc
from shmproc.futures import BrokenWorkerError, ProcessPoolExecutor, TaskTimeoutError
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
