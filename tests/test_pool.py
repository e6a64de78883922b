"""shmproc.Pool: multiprocessing.Pool's API, and what a dead or slow worker does to it.

Every cross-process behaviour runs under fork and spawn (the ``method`` fixture)."""
import os
import threading
import time

import pytest
import support_pool as sp

import shmproc
from shmproc.ndarray import _block_of
from shmproc.pool import Pool, TaskTimeoutError, ThreadPool, WorkerLostError


@pytest.fixture(params=["fork", "spawn"])
def method(request):
    return request.param


@pytest.fixture
def pool(method):
    with Pool(2, context=shmproc.get_context(method)) as p:
        yield p
    p.join()


def test_the_api_of_multiprocessing(pool):
    assert pool.apply(sp.add, (1, 2)) == 3
    assert pool.apply(sp.add, (), {"x": 1, "y": 5}) == 6
    assert pool.map(sp.square, range(50)) == [x * x for x in range(50)]
    assert pool.map(sp.square, range(50), chunksize=7) == [x * x for x in range(50)]
    assert pool.starmap(sp.add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.map_async(sp.square, range(5)).get(30) == [0, 1, 4, 9, 16]
    assert pool.starmap_async(sp.add, [(1, 1)]).get(30) == [2]
    assert list(pool.imap(sp.square, range(20), chunksize=3)) == [x * x for x in range(20)]
    assert sorted(pool.imap_unordered(sp.square, iter(range(20)))) == [x * x for x in range(20)]
    assert pool.map(sp.square, []) == [] and list(pool.imap(sp.square, [])) == []
    result = pool.apply_async(sp.square, (4,))
    result.wait(30)
    assert result.ready() and result.successful() and result.get() == 16


def test_pool_and_thread_pool_come_from_the_module_and_the_context():
    assert shmproc.pool.ThreadPool is ThreadPool
    with shmproc.get_context("fork").Pool(1) as p:
        assert isinstance(p, Pool) and len(p._pool) == 1
    with ThreadPool(2) as tp:
        assert tp.map(sp.square, range(3)) == [0, 1, 4]


def test_callbacks_and_worker_tracebacks(pool):
    seen = []
    done = threading.Event()
    pool.apply_async(sp.raise_value_error, (3,), error_callback=lambda e: (seen.append(e),
                                                                          done.set()))
    assert done.wait(30)
    assert isinstance(seen[0], ValueError)
    with pytest.raises(ValueError) as info:
        pool.map(sp.raise_value_error, [1])
    assert "raise ValueError" in info.value.__cause__.tb
    got = []
    pool.map_async(sp.square, [2], callback=got.append).wait(30)
    assert got == [[4]]


def test_bad_results_and_exceptions_fail_their_task_only(pool):
    from multiprocessing.pool import MaybeEncodingError
    with pytest.raises(MaybeEncodingError):
        pool.apply(sp.return_unpicklable, (1,))
    with pytest.raises(RuntimeError, match="cannot be rebuilt"):
        pool.apply(sp.return_fails_to_unpickle, (1,))
    with pytest.raises(SystemExit):
        pool.apply(sp.raise_base_exception, (1,))
    # SystemExit while pickling a result: MaybeEncodingError, as any pickling error (the
    # executor passes the SystemExit on); unpickling: that task fails, the pool goes on.
    with pytest.raises(MaybeEncodingError, match="SystemExit"):
        pool.apply(sp.return_exits_at_pickle, (1,))
    with pytest.raises(SystemExit):
        pool.apply(sp.return_exits_at_unpickle, (1,))
    with pytest.raises(MaybeEncodingError, match="cannot travel"):
        pool.apply(sp.raise_unpicklable_error, (1,))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pool.map(sp.identity, [1, sp.Unpicklable(), 3])
    # The neighbours of a failing task in the same batch still get their own results.
    iterator = pool.imap(sp.unpicklable_at_3, range(8), chunksize=8)
    assert [next(iterator) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(MaybeEncodingError):
        next(iterator)
    assert list(iterator) == [4, 5, 6, 7]
    assert pool.map(sp.square, range(10)) == [x * x for x in range(10)]


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        Pool(0)
    with pytest.raises(ValueError):
        Pool(-1)
    with pytest.raises(ValueError):
        Pool(1, maxtasksperchild=0)
    with pytest.raises(TypeError):
        Pool(1, initializer=3)
    with pytest.raises(ValueError):
        Pool(1, task_timeout=-1)
    with pytest.raises(ValueError):
        Pool(1, retries=-1)
    with Pool(1) as p:
        with pytest.raises(ValueError):
            p.map(sp.square, [1], chunksize=0)
        with pytest.raises(TypeError):
            p.map(3, [1])
        with pytest.raises(ValueError):
            p.apply(sp.square, (1,), task_timeout=0)
        with pytest.raises(ValueError):
            p.imap(sp.square, [1], buffersize=0)
        p.close()
        with pytest.raises(ValueError):
            p.map(sp.square, [1])
        p.join()
    with pytest.raises(ValueError):
        p.apply(sp.square, (1,))


@pytest.mark.parametrize("how", ["sigkill", "segv", "abort", "exit"])
def test_a_dead_worker_fails_its_task_and_the_pool_goes_on(method, how):
    with Pool(2, context=shmproc.get_context(method)) as p:
        started = time.monotonic()
        result = p.starmap_async(sp.kill_self_at, [(x, 13, how) for x in range(40)], 1)
        with pytest.raises(WorkerLostError) as info:
            result.get(30)
        error = info.value
        assert error.task_index == 13 and "13" in error.task_repr
        assert error.pid not in [w.pid for w in p._pool]
        assert (error.exitcode == 7) if how == "exit" else error.signal in (
            "SIGKILL", "SIGSEGV", "SIGABRT")
        assert str(error.pid) in str(error)
        # The other tasks finished and the worker was replaced.
        assert p.map(sp.square, range(20)) == [x * x for x in range(20)]
        assert sum(s["restarts"] for s in p.stats()) == 1
        assert time.monotonic() - started < 30


def test_a_fork_server_pool_starts_replaces_and_fails_tasks_as_the_others():
    # Fork-server workers say when they are ready, as spawned ones do (each runs the program's
    # main module again before its first task); a replacement does too.
    with Pool(2, context=shmproc.get_context("forkserver")) as p:
        assert p.apply(sp.square, (3,)) == 9
        result = p.starmap_async(sp.kill_self_at, [(x, 5, "sigkill") for x in range(20)], 1)
        with pytest.raises(WorkerLostError) as info:
            result.get(30)
        assert info.value.task_index == 5
        assert p.map(sp.square, range(20)) == [x * x for x in range(20)]
        with pytest.raises(ValueError):
            p.apply(sp.raise_value_error, (1,))
        assert sum(s["restarts"] for s in p.stats()) == 1


def test_with_chunks_the_run_of_a_dead_worker_is_run_again_task_by_task(method):
    # Chunked batches record only which run of tasks a worker is in: after a death, that run's
    # tasks are run again one by one, and the one that kills its worker again is named.
    with Pool(2, context=shmproc.get_context(method)) as p:
        result = p.starmap_async(sp.kill_self_at, [(x, 13, "sigkill") for x in range(40)], 10)
        with pytest.raises(WorkerLostError) as info:
            result.get(30)
        assert info.value.task_index == 13
        assert sum(s["restarts"] for s in p.stats()) == 2
        assert p.starmap(sp.kill_self_at, [(x, -1) for x in range(40)], 10) == list(range(40))


def test_retries_run_a_lost_task_again(method, tmp_path):
    flag = str(tmp_path / "died")
    with Pool(2, context=shmproc.get_context(method), retries=1) as p:
        assert p.starmap(sp.kill_self_once, [(x, 5, flag) for x in range(12)]) == list(range(12))
        assert os.path.exists(flag)


def test_task_timeout_kills_the_stuck_worker_and_the_rest_finish(method):
    with Pool(2, context=shmproc.get_context(method)) as p:
        results = p.map_async(sp.block_in_c, range(6), task_timeout=1.0)
        with pytest.raises(TaskTimeoutError) as info:
            results.get(30)
        assert info.value.task_index == 1
        assert isinstance(info.value, shmproc.TimeoutError) and isinstance(info.value, TimeoutError)
        assert p.apply(sp.square, (3,)) == 9
    with Pool(1, context=shmproc.get_context(method), task_timeout=0.5) as p:
        with pytest.raises(TaskTimeoutError):
            p.apply(sp.sleep_if, (1, 1, 60))
        assert p.apply(sp.sleep_if, (1, 1, 0.01)) == 1


def test_get_timeout_keeps_its_meaning(pool):
    result = pool.apply_async(sp.sleep_if, (1, 1, 1.0))
    with pytest.raises(shmproc.TimeoutError):
        result.get(0.05)
    assert result.get(30) == 1


def test_a_chunk_runs_whole_in_one_worker(pool):
    # As in multiprocessing: the chunks the caller asked for (and map's default ones) each go to
    # one worker, whatever their size, in one message rather than in pieces.
    pids = pool.map(sp.pid_of_worker, range(6000), chunksize=3000)
    assert len(set(pids[:3000])) == 1 and len(set(pids[3000:])) == 1
    pids = pool.map(sp.pid_of_worker, range(20_000))      # default: chunks of 2,500
    assert all(len(set(pids[start:start + 2500])) == 1 for start in range(0, 20_000, 2500))


def test_results_keep_their_exact_types_among_plain_ones(pool):
    for chunksize in (None, 1):
        results = pool.map(sp.count_or_int, range(1000), chunksize)
        assert results == list(range(1000))
        assert [type(r) for r in results[699:702]] == [int, sp.Count, int]


@pytest.mark.parametrize("chunksize", [1, 4])
def test_maxtasksperchild_counts_tasks_exactly(method, chunksize):
    with Pool(2, maxtasksperchild=3, context=shmproc.get_context(method)) as p:
        pids = p.map(sp.pid_of_worker, range(30), chunksize=chunksize)
        counts = {pid: pids.count(pid) for pid in set(pids)}
        assert all(count <= 3 for count in counts.values()), counts
        assert sum(counts.values()) == 30
        total = sum(s["tasks"] for s in p.stats())
        assert total == 30


def test_maxtasksperchild_recycling_shapes_of_known_hangs(method):
    # A pool recycling workers while callers wait on apply_async, and closed early.
    with Pool(2, maxtasksperchild=1, context=shmproc.get_context(method)) as p:
        results = [p.apply_async(sp.square, (i,)) for i in range(8)]
        assert [r.get(30) for r in results] == [i * i for i in range(8)]
    p = Pool(3, maxtasksperchild=1, context=shmproc.get_context(method))
    results = [p.apply_async(sp.sleep_if, (i, i, 0.05)) for i in range(6)]
    p.close()
    p.join()
    assert [r.get(0) for r in results] == list(range(6))


def test_initializer_runs_in_every_worker(method):
    with Pool(2, initializer=sp.initializer_sets, initargs=(41,),
              context=shmproc.get_context(method)) as p:
        assert set(p.map(sp.read_initialized, range(8))) == {41}


def test_imap_buffersize_reads_an_endless_input_lazily(pool):
    import itertools
    taken = []

    def endless():
        for i in itertools.count():
            taken.append(i)
            yield i

    iterator = pool.imap(sp.square, endless(), buffersize=4)
    assert [next(iterator) for _ in range(10)] == [x * x for x in range(10)]
    time.sleep(0.05)
    assert len(taken) <= 10 + 4 + 1


def shared_memory_mappings():
    with open("/proc/self/maps") as maps:
        return sum(1 for line in maps if "/dev/shm" in line or "memfd:" in line
                   or (os.environ.get("SHMPROC_SHM_DIR") or "/dev/shm") in line)


def test_fresh_shared_arrays_come_back(pool):
    """By reference: each result is its worker's segment, mapped once here and never copied."""
    pool.map(sp.fresh_shared_array, range(2))        # the pool's own memory is all mapped now
    mapped = shared_memory_mappings()
    arrays = pool.map(sp.fresh_shared_array, range(6))
    assert [float(a[0]) for a in arrays] == [float(x) for x in range(6)]
    blocks = [_block_of(a) for a in arrays]
    assert all(block is not None and a.__array_interface__["data"][0] == block.address
               for a, block in zip(arrays, blocks))
    assert shared_memory_mappings() - mapped == len(arrays)


def test_shared_arrays_go_as_handles(pool):
    array = shmproc.zeros(1 << 20)
    array[5] = 2.5
    assert pool.starmap(sp.sum_shared, [(array, 5)] * 4) == [2.5] * 4


def test_progress_and_stats(pool, capsys):
    assert pool.map(sp.square, range(100), progress=True) == [x * x for x in range(100)]
    assert list(pool.imap(sp.square, iter(range(10)), progress=True))[-1] == 81
    stats = pool.stats()
    assert len(stats) == 2 and sum(s["tasks"] for s in stats) >= 110
    assert all(s["busy"] >= 0 and s["restarts"] == 0 for s in stats)


def test_close_join_terminate_in_any_order(method):
    ctx = shmproc.get_context(method)
    p = Pool(2, context=ctx)
    p.close()
    p.join()
    p.terminate()
    p = Pool(2, context=ctx)
    p.terminate()
    p.terminate()
    p.join()
    p = Pool(2, context=ctx)
    pending = p.starmap_async(sp.sleep_if, [(1, 1, 60)] * 4)
    p.terminate()
    p.join()
    with pytest.raises(RuntimeError, match="terminated"):
        pending.get(10)
    with Pool(2, context=ctx) as p:
        iterator = p.imap(sp.square, range(1000))
        assert next(iterator) == 0       # partially consumed, then the pool goes
    p.join()


def test_a_pool_dropped_without_close_goes_away(method):
    import gc
    p = Pool(2, context=shmproc.get_context(method))
    assert p.map(sp.square, [2]) == [4]
    engine = p._engine
    with pytest.warns(ResourceWarning):
        del p
        gc.collect()
    engine.join(10)
    assert not engine._thread.is_alive()
    engine.release()


def test_cluster_needs_the_distributed_module():
    try:
        import shmproc.distributed  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ImportError, match="shmproc.distributed"):
            Pool(1, cluster="tcp://127.0.0.1:1")
    else:
        pytest.skip("shmproc.distributed is present: its own tests cover cluster=")


def test_pools_are_not_picklable(pool):
    import pickle
    with pytest.raises(NotImplementedError):
        pickle.dumps(pool)
    assert "state=RUN" in repr(pool)


def test_ctrl_c_in_map_returns_promptly():
    import subprocess
    import sys
    code = (
        "import os, signal, threading, support_pool as sp, shmproc\n"
        "from shmproc.pool import Pool\n"
        "if __name__ == '__main__':\n"
        "    with Pool(2) as p:\n"
        "        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "        try:\n"
        "            p.starmap(sp.sleep_if, [(1, 1, 60)] * 4)\n"
        "        except KeyboardInterrupt:\n"
        "            print('interrupted')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, env=env)
    assert "interrupted" in out.stdout, out.stderr


def test_a_killed_parent_takes_its_workers_along():
    import subprocess
    import sys

    import psutil
    code = (
        "import os, sys, support_pool as sp\n"
        "from shmproc.pool import Pool\n"
        "if __name__ == '__main__':\n"
        "    p = Pool(2)\n"
        "    print(' '.join(str(w.pid) for w in p._pool), flush=True)\n"
        "    p.starmap(sp.sleep_if, [(1, 1, 60)] * 4)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=env)
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    parent.kill()
    parent.wait(10)
    parent.stdout.close()
    gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in pids if
                                     psutil.pid_exists(pid)], timeout=5)
    assert not alive
