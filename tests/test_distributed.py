"""Pool(cluster=...) and ProcessPoolExecutor(cluster=...) on a real Dask LocalCluster: worker
processes on 127.0.0.1, one cluster shared by the module (a start costs seconds)."""
import concurrent.futures
import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="the cluster tests need the dask extra: pip install \"shmproc[dask]\"")

import support_distributed as support  # noqa: E402
from conftest import long_lived_pids  # noqa: E402

import shmproc  # noqa: E402
from shmproc.distributed import ClusterExecutor, ClusterPool  # noqa: E402
from shmproc.pool import Pool  # noqa: E402

pytestmark = pytest.mark.timeout(120)

TESTS = os.path.dirname(os.path.abspath(__file__))


def _keep_worker_pids(client):
    client.wait_for_workers(2, timeout=30)
    long_lived_pids.update(client.run(os.getpid).values())


@pytest.fixture(scope="module")
def cluster():
    made = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                    host="127.0.0.1", dashboard_address=None)
    with distributed.Client(made) as client:
        _keep_worker_pids(client)
    yield made
    made.close()
    long_lived_pids.clear()


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster) as client:
        yield client
        _keep_worker_pids(client)


@pytest.fixture
def pool(client):
    pool = Pool(cluster=client)
    yield pool
    pool.terminate()


def test_pool_with_cluster_is_a_cluster_pool(pool, client):
    assert isinstance(pool, ClusterPool) and isinstance(pool, Pool)
    assert pool.client is client


@pytest.mark.parametrize("given", ["cluster object", "scheduler address"])
def test_cluster_object_or_address(cluster, given):
    target = cluster if given == "cluster object" else cluster.scheduler_address
    with shmproc.Pool(cluster=target) as pool:          # through the context, as a program would
        assert isinstance(pool, ClusterPool)
        assert pool.map(support.square, range(20)) == [x * x for x in range(20)]
        client = pool.client
    assert client.status == "closed"                    # the pool's own client, closed with it


def test_executor_through_the_standard_constructor(client):
    from shmproc.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(cluster=client) as executor:
        assert isinstance(executor, ClusterExecutor)
        assert executor.submit(support.add, 1, 2).result(30) == 3


def test_map_imap_starmap(pool):
    assert pool.map(support.square, range(1000)) == [x * x for x in range(1000)]
    assert list(pool.imap(support.square, range(50))) == [x * x for x in range(50)]
    assert sorted(pool.imap_unordered(support.square, range(50))) == [x * x for x in range(50)]
    assert pool.starmap(support.add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.map(support.square, range(10), chunksize=3) == [x * x for x in range(10)]
    assert pool.map(support.square, []) == []


def test_imap_of_an_endless_iterator_with_buffersize(pool):
    def naturals():
        n = 0
        while True:
            yield n
            n += 1
    results = pool.imap(support.square, naturals(), buffersize=8)
    assert [next(results) for _ in range(30)] == [x * x for x in range(30)]


def test_apply_async_callbacks_and_remote_traceback(pool):
    got, errors = [], []
    assert pool.apply_async(support.add, (2, 3), callback=got.append).get(30) == 5
    assert got == [5]
    result = pool.apply_async(support.fail, (7,), error_callback=errors.append)
    with pytest.raises(ValueError, match="task 7 failed") as info:
        result.get(30)
    assert errors and errors[0] is info.value
    assert "support_distributed.py" in str(info.value.__cause__)      # the worker's traceback
    assert not result.successful()
    with pytest.raises(ValueError, match=r"task \d failed"):
        pool.map(support.fail, range(5))


def test_unpicklable_result_fails_its_task_only(pool):
    results = pool.map_async(support.unpicklable_result, [1]).wait(30)
    with pytest.raises(Exception, match="lambda|pickle"):
        pool.apply(support.unpicklable_result, (1,))
    assert results is None
    assert pool.apply(support.square, (4,)) == 16


def test_lambda_goes_by_value(pool):
    assert pool.map(lambda x: x + 1, range(3)) == [1, 2, 3]


def test_initializer_runs_before_tasks(client):
    with Pool(initializer=support.remember, initargs=("ready",), cluster=client) as pool:
        assert all(state == ["ready"] for state in pool.map(lambda _: support.initialized(),
                                                            range(20), chunksize=1))


def test_close_join_and_closed_pool(client):
    pool = Pool(cluster=client)
    result = pool.map_async(support.nap_then_square, range(20), chunksize=1)
    pool.close()
    pool.join()
    assert result.ready() and result.get() == [x * x for x in range(20)]
    with pytest.raises(ValueError, match="Pool not running"):
        pool.apply_async(support.square, (1,))
    assert client.status == "running"             # the caller's client stays open


def test_terminate_fails_what_is_not_done(client):
    pool = Pool(cluster=client)
    result = pool.map_async(support.nap_then_square, range(200), chunksize=1)
    pool.terminate()
    with pytest.raises(RuntimeError, match="terminated"):
        result.get(30)


def test_progress_bar(pool, capsys):
    assert pool.map(support.square, range(100), progress=True) == [x * x for x in range(100)]
    assert "100/100" in capsys.readouterr().err


def test_task_timeout_and_maxtasksperchild_are_refused(client):
    with pytest.raises(ValueError, match="maxtasksperchild"):
        Pool(maxtasksperchild=5, cluster=client)
    with pytest.raises(ValueError, match="task_timeout"):
        Pool(task_timeout=5, cluster=client)
    with Pool(cluster=client) as pool, pytest.raises(ValueError, match="task_timeout"):
        pool.map(support.square, range(3), task_timeout=1)


def test_executor(client):
    with ClusterExecutor(cluster=client) as executor:
        futures = [executor.submit(support.add, n, 1) for n in range(100)]
        done, _ = concurrent.futures.wait(futures, timeout=60)
        assert len(done) == 100 and [f.result() for f in futures] == list(range(1, 101))
        assert list(executor.map(support.add, range(5), range(5))) == [0, 2, 4, 6, 8]
        with pytest.raises(ValueError, match="task 1 failed"):
            executor.submit(support.fail, 1).result(30)
    with pytest.raises(RuntimeError, match="shutdown"):
        executor.submit(support.square, 1)


def test_shared_array_goes_by_reference_to_same_host_workers(pool, caplog):
    array = shmproc.zeros(1 << 20, dtype=np.uint8)
    array[:] = 3
    with caplog.at_level(logging.DEBUG, logger="shmproc.distributed"):
        digest = pool.apply(support.fill_and_digest, (array, 9))
    assert digest == _digest(np.full(1 << 20, 3, np.uint8))
    assert (array == 9).all()                     # the worker wrote into this very memory
    assert "by reference" in caplog.text


def _digest(array):
    import hashlib
    return hashlib.sha256(array.tobytes()).hexdigest()


def _unshared_worker(scheduler_address):
    """A Dask worker in its own mount and pid namespaces, with its own /proc: this process's
    /proc/<pid>/fd does not exist there, so attaching our shared memory really fails."""
    command = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
               sys.executable, "-m",
               "distributed.cli.dask_worker", scheduler_address, "--nthreads", "1", "--no-nanny",
               "--host", "127.0.0.1", "--no-dashboard"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS] + sys.path))
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_shared_array_goes_by_value_to_a_worker_that_cannot_attach(caplog):
    if os.geteuid() != 0 or subprocess.run(["unshare", "--mount", "--pid", "--fork", "true"],
                                           capture_output=True, check=False).returncode != 0:
        pytest.skip("needs unshare(1) with mount and pid namespaces (root)")
    with distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as made:
        worker = _unshared_worker(made.scheduler_address)
        try:
            with distributed.Client(made) as client:
                client.wait_for_workers(1, timeout=60)
                array = shmproc.asshared(np.random.default_rng(5).random(1 << 18))
                expected = _digest(array)
                with caplog.at_level(logging.DEBUG, logger="shmproc.distributed"), \
                        Pool(cluster=client) as pool:
                    assert pool.apply(support.fill_and_digest, (array, 1.0)) == expected
            assert _digest(array) == expected         # the worker wrote into its own copy
            assert "cannot attach" in caplog.text and "by value" in caplog.text
        finally:
            worker.kill()          # unshare --kill-child takes the worker with it
            worker.wait(30)


def _run_watched(args, timeout):
    """A scenario in a fresh interpreter, under a watchdog: a hang is a failure, not a stall."""
    return subprocess.run([sys.executable, os.path.join(TESTS, "support_distributed.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=TESTS,
                          check=False)


@pytest.mark.timeout(180)
def test_worker_killed_mid_map_is_rescheduled():
    run = _run_watched(["kill-worker"], timeout=120)
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert last.startswith("DONE True"), last


@pytest.mark.timeout(180)
def test_lost_scheduler_is_a_clear_error(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        import json
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "2",
             "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"],
            env=dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS] + sys.path)),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with distributed.Client(address) as probe:
            probe.wait_for_workers(1, timeout=60)
        run = _run_watched(["lose-scheduler", address, str(scheduler.pid)], timeout=120)
        lines = run.stdout.strip().splitlines()
        assert lines and lines[0].startswith("LOST"), run.stdout + run.stderr[-2000:]
        assert lines[-1] == "LOST AFTER"
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.kill()
                process.wait(30)


def test_insecure_remote_address_is_refused():
    with pytest.raises(ValueError, match="clear text"):
        Pool(cluster="tcp://192.0.2.1:8786")
    with pytest.raises(ValueError, match="clear text"):
        ClusterExecutor(cluster="tcp://192.0.2.1:8786")


def test_security_is_passed_to_dask(cluster):
    security = distributed.security.Security(require_encryption=True)
    with pytest.raises(Exception, match="(?i)encrypt|tls"):
        Pool(cluster=cluster.scheduler_address, security=security)


def test_local_cluster_binds_loopback_without_dashboard():
    psutil = pytest.importorskip("psutil")
    with Pool(2, cluster="local") as pool:
        assert pool.map(support.square, range(10)) == [x * x for x in range(10)]
        info = pool.client.scheduler_info()
        assert pool.client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert all(address.startswith("tcp://127.0.0.1:") for address in info["workers"])
        pids = [os.getpid(), *pool.client.run(os.getpid).values()]
        listening = [c.laddr.ip for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in pids]
        assert listening and set(listening) == {"127.0.0.1"}, listening
        assert "dashboard" not in info.get("services", {}) or _no_dashboard(info)


def _no_dashboard(info):
    import urllib.error
    import urllib.request
    port = info["services"]["dashboard"]
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5)
    except urllib.error.HTTPError as exc:
        return exc.code == 404
    return False


def test_import_shmproc_never_imports_dask():
    code = ("import sys, shmproc, shmproc.pool; "
            "assert 'dask' not in sys.modules and 'distributed' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_dask_names_the_extra():
    code = ("import sys; sys.modules['distributed'] = None\n"
            "from shmproc.pool import Pool\n"
            "try:\n    Pool(cluster='local')\n"
            "except ImportError as exc:\n    print(exc)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=False)
    assert 'pip install "shmproc[dask]"' in run.stdout, run.stdout + run.stderr


def test_joblib_backend_on_the_cluster(client):
    joblib = pytest.importorskip("joblib")
    import shmproc.joblib_backend  # noqa: F401
    array = np.random.default_rng(2).random((2000, 200))        # 3.2 MB: shared once
    expected = [float(array[:, c].sum()) for c in range(30)]
    with joblib.parallel_config(backend="shmproc", n_jobs=2, cluster=client):
        got = joblib.Parallel()(joblib.delayed(support.column_sum)(array, c) for c in range(30))
    assert got == expected
