"""Functions the cluster tests send to Dask workers (importable there: the workers are spawned
with the test process's sys.path, or given PYTHONPATH)."""
import hashlib
import os
import sys
import time

_initialized = []


def square(x):
    return x * x


def add(x, y):
    return x + y


def fail(x):
    raise ValueError(f"task {x} failed")


def nap_then_square(x):
    time.sleep(0.05)
    return x * x


def nap_then_read(array, index):
    time.sleep(0.02)
    return float(array[index])


def remember(value):
    _initialized.append(value)


def initialized():
    return list(_initialized)


def fill_and_digest(array, value):
    """Writes into the array it got (visible to the sender only if it got the sender's memory),
    and returns a digest of what it got first."""
    digest = hashlib.sha256(array.tobytes()).hexdigest()
    array[:] = value
    return digest


def column_sum(array, column):
    return float(array[:, column].sum())


def unpicklable_result(x):
    return lambda: x


def worker_pid(_):
    return os.getpid()


def main_kill_worker_mid_map():
    """A subprocess scenario (run under a watchdog by the test): a worker SIGKILLed in the middle
    of map(); the map must finish with correct results, or fail clearly, within 10 s."""
    import signal

    import numpy as np

    import shmproc
    from shmproc.pool import Pool
    array = shmproc.asshared(np.arange(200.0))     # a replacement worker lacks it: placed again
    with Pool(2, cluster="local") as pool:
        pids = sorted(set(pool.map(worker_pid, range(8), chunksize=1)))
        result = pool.starmap_async(nap_then_read, [(array, x) for x in range(200)], chunksize=2)
        time.sleep(0.3)
        os.kill(pids[0], signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            values = result.get(timeout=10)
        except Exception as exc:
            print(f"ERROR {type(exc).__name__}: {exc}")
            return
        ok = values == [float(x) for x in range(200)]
        print(f"DONE {ok} {time.monotonic() - killed_at:.2f}")


def main_lose_scheduler(address, scheduler_pid):
    """A subprocess scenario: the scheduler SIGKILLed in the middle of map()."""
    import signal

    from shmproc.distributed import SchedulerLostError
    from shmproc.pool import Pool
    pool = Pool(cluster=address)
    result = pool.map_async(nap_then_square, range(400), chunksize=2)
    time.sleep(0.5)
    os.kill(scheduler_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        result.get(timeout=10)
        print("NO ERROR")
    except SchedulerLostError as exc:
        print(f"LOST {time.monotonic() - killed_at:.2f} {exc}")
    try:
        pool.apply_async(square, (1,))
        print("NO ERROR AFTER")
    except SchedulerLostError:
        print("LOST AFTER")
    pool.terminate()


def _stop_resource_tracker():
    """A SIGKILLed Dask worker leaves its named semaphores to multiprocessing's resource tracker,
    which unlinks them when it stops: stop it now, and wait for it, so that the caller finds
    /dev/shm clean when this process has exited."""
    from multiprocessing import resource_tracker
    stop = getattr(resource_tracker._resource_tracker, "_stop", None)
    if stop is not None:
        stop()


if __name__ == "__main__":
    # Through the module's own name, so that the functions reach the workers as
    # support_distributed.*, not as __main__.* (the workers' __main__ is Dask's).
    import support_distributed
    if sys.argv[1] == "kill-worker":
        support_distributed.main_kill_worker_mid_map()
    else:
        support_distributed.main_lose_scheduler(sys.argv[2], int(sys.argv[3]))
    _stop_resource_tracker()
