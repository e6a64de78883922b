"""Fault soak for shmproc.Pool: many imaps while a killer thread SIGKILLs workers at random moments.

    python tests/stress/pool_soak.py [seconds] [start method]

Every task must come back exactly once, as its own value or as WorkerLostError; nothing may hang
(the caller runs this under a watchdog: the test in test_pool_soak.py, or `timeout`). Prints a
summary line ``soak ok: ...`` when every check passed.
"""
import os
import random
import signal
import sys
import threading
import time

import shmproc
from shmproc.pool import Pool, WorkerLostError

TASKS_PER_MAP = 200


def task(i):
    # Mostly tiny tasks, some that sleep: kills land in every phase (taking, running, sending).
    if i % 17 == 0:
        time.sleep(0.002)
    return i


def kill_workers_at_random(pool, stop, kills, longest_pause):
    rng = random.Random(1234)
    while not stop.wait(rng.uniform(0.001, longest_pause)):
        workers = [w for w in list(pool._pool) if w.exitcode is None]
        if workers:
            try:
                os.kill(rng.choice(workers).pid, signal.SIGKILL)
                kills.append(1)
            except (ProcessLookupError, TypeError):
                pass


def main(seconds, method):
    ctx = shmproc.get_context(method)
    end = time.monotonic() + seconds
    maps = returned = lost = 0
    kills = []
    with Pool(2, context=ctx, retries=int(os.environ.get("SOAK_RETRIES", "0"))) as pool:
        stop = threading.Event()
        # A spawned worker takes ~0.1 s to start: kill less often, or none would ever run a task.
        longest_pause = 0.03 if method == "fork" else 0.4
        killer = threading.Thread(target=kill_workers_at_random,
                                  args=(pool, stop, kills, longest_pause))
        killer.start()
        try:
            while time.monotonic() < end:
                results = pool.imap(task, range(TASKS_PER_MAP), chunksize=1)
                seen = 0
                while True:
                    try:
                        value = next(results)
                    except StopIteration:
                        break
                    except WorkerLostError as exc:
                        assert exc.task_index == seen, (exc.task_index, seen)
                        lost += 1
                    else:
                        assert value == seen, (value, seen)
                        returned += 1
                    seen += 1
                assert seen == TASKS_PER_MAP, seen
                maps += 1
        finally:
            stop.set()
            killer.join()
        # Still usable afterwards.
        assert pool.map(task, range(50)) == list(range(50))
    pool.join()
    print(f"soak ok: {maps} maps, {returned} returned, {lost} lost to {len(kills)} kills "
          f"({method})", flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0,
         sys.argv[2] if len(sys.argv) > 2 else "fork")
