"""Synchronization primitives, shmproc against multiprocessing and threading, side by side.

    python asv_bench/compare_synchronize.py [--repeat 7] [--quick]

Uncontended rows time one call pattern in a loop in this process. Cross-process rows (barrier
rounds, condition ping-pong, a contended lock) fork real processes with
multiprocessing.get_context("fork") for both libraries, so only the primitive differs. Every row runs
its candidates interleaved and prints medians of the repeats; the ratio columns are time ratios
(below 1: shmproc is faster).
"""
import argparse
import multiprocessing
import os
import threading
import time

import shmproc
from shmproc.bench.timing import format_ratio, format_seconds, format_table, interleaved, medians, per_call

FORK = multiprocessing.get_context("fork")
LIBRARIES = {"shmproc": shmproc, "multiprocessing": FORK, "threading": threading}
JOIN_TIMEOUT = 60


# --- uncontended: one process, one thread ---------------------------------------------------------

UNCONTENDED = [
    # (row, factory attribute, constructor arguments, statement on `obj`)
    ("Lock acquire(); release()", "Lock", (), "acquire(); release()"),
    ("Lock with", "Lock", (), "with obj: pass"),
    ("RLock acquire(); release()", "RLock", (), "acquire(); release()"),
    ("RLock with", "RLock", (), "with obj: pass"),
    ("Semaphore acquire(); release()", "Semaphore", (1,), "acquire(); release()"),
    ("Event set(); clear()", "Event", (), "set(); clear()"),
    ("Event is_set()", "Event", (), "is_set()"),
]


def uncontended_candidates(attribute, arguments, statement, number):
    candidates = {}
    for name, library in LIBRARIES.items():
        obj = getattr(library, attribute)(*arguments)
        # Bound methods are looked up once, as a tight loop in user code would.
        namespace = {"obj": obj}
        for method in ("acquire", "release", "set", "clear", "is_set"):
            if hasattr(obj, method):
                namespace[method] = getattr(obj, method)
        candidates[name] = per_call(statement, namespace, number)
    return candidates


# --- across processes ---------------------------------------------------------------------------

def placed(cpu, target, *args):
    """Run target(*args) pinned to one CPU (None: wherever the scheduler likes)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    return target(*args)


class pinned:
    """Pin this process to one CPU for the duration (None: no pinning)."""

    def __init__(self, cpu):
        self.cpu = cpu

    def __enter__(self):
        self.saved = os.sched_getaffinity(0)
        if self.cpu is not None:
            os.sched_setaffinity(0, {self.cpu})

    def __exit__(self, *exc_info):
        os.sched_setaffinity(0, self.saved)


def placement(layout, processes):
    """CPUs for the parent then each child: "apart" spreads them round-robin over the cores,
    "together" puts all on one core, None leaves them to the scheduler."""
    cpus = sorted(os.sched_getaffinity(0))
    if layout == "apart":
        return [cpus[index % len(cpus)] for index in range(processes)]
    if layout == "together":
        return [cpus[0]] * processes
    return [None] * processes


def _barrier_party(barrier, rounds):
    for _ in range(rounds + 1):         # +1: the start line
        barrier.wait()


def barrier_round(library, parties, rounds, layout):
    """Seconds per round of `parties` processes (this one included) meeting at a Barrier."""
    barrier = library.Barrier(parties)
    cpus = placement(layout, parties)
    children = [FORK.Process(target=placed, args=(cpu, _barrier_party, barrier, rounds)) for cpu in cpus[1:]]
    with pinned(cpus[0]), running(children):
        barrier.wait()
        start = time.perf_counter()
        for _ in range(rounds):
            barrier.wait()
        return (time.perf_counter() - start) / rounds


def _condition_partner(condition, turn, rounds):
    for _ in range(rounds):
        with condition:
            while turn.value != 1:
                condition.wait()
            turn.value = 0
            condition.notify()


def condition_ping_pong(library, rounds, layout):
    """Seconds per notify/wait round trip between this process and a child."""
    condition = library.Condition()
    turn = FORK.RawValue("i", 0)         # plain shared memory; the condition's lock orders it
    cpus = placement(layout, 2)
    child = FORK.Process(target=placed, args=(cpus[1], _condition_partner, condition, turn, rounds))
    with pinned(cpus[0]), running([child]):
        start = time.perf_counter()
        for _ in range(rounds):
            with condition:
                turn.value = 1
                condition.notify()
                while turn.value != 0:
                    condition.wait()
        return (time.perf_counter() - start) / rounds


def _lock_hammer(lock, go, iterations):
    go.wait()
    for _ in range(iterations):
        with lock:
            pass


def contended_lock(library, processes, iterations, layout):
    """Seconds per acquire+release when `processes` child processes hammer one Lock."""
    lock = library.Lock()
    go = FORK.Event()
    cpus = placement(layout, processes + 1)
    children = [FORK.Process(target=placed, args=(cpu, _lock_hammer, lock, go, iterations)) for cpu in cpus[1:]]
    with running(children):
        start = time.perf_counter()
        go.set()
        for child in children:
            child.join(JOIN_TIMEOUT)
        return (time.perf_counter() - start) / (processes * iterations)


class running:
    """Start processes; on leaving, join them (bounded) and fail loudly if one did not finish."""

    def __init__(self, processes):
        self.processes = processes

    def __enter__(self):
        for process in self.processes:
            process.start()

    def __exit__(self, *exc_info):
        for process in self.processes:
            process.join(JOIN_TIMEOUT)
        stuck = [process for process in self.processes if process.is_alive()]
        for process in stuck:
            process.kill()
            process.join()
        if stuck and exc_info[0] is None:
            raise RuntimeError(f"{len(stuck)} benchmark process(es) did not finish in {JOIN_TIMEOUT} s")
        failed = [process.exitcode for process in self.processes if process.exitcode]
        if failed and exc_info[0] is None:
            raise RuntimeError(f"benchmark process(es) failed with exit codes {failed}")


def cross_process_rows(scale):
    rounds = max(50, int(2000 * scale))
    iterations = max(500, int(20000 * scale))
    cases = [
        # Two processes on two cores can hand off by spinning; on one core they must switch.
        ("Barrier round, 2 processes on 2 cores", barrier_round, (2, rounds, "apart")),
        ("Barrier round, 2 processes on 1 core", barrier_round, (2, rounds, "together")),
        ("Barrier round, 3 processes on 2 cores", barrier_round, (3, rounds, "apart")),
        ("Barrier round, 3 processes, unpinned", barrier_round, (3, rounds, None)),
        ("Condition ping-pong, 2 processes on 2 cores", condition_ping_pong, (rounds, "apart")),
        ("Condition ping-pong, 2 processes on 1 core", condition_ping_pong, (rounds, "together")),
        ("Lock contended, 2 processes on 2 cores", contended_lock, (2, iterations, "apart")),
    ]
    libraries = {"shmproc": shmproc, "multiprocessing": FORK}
    return [(row, {name: (lambda measure=measure, library=library, arguments=arguments: measure(library, *arguments))
                   for name, library in libraries.items()})
            for row, measure, arguments in cases]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="repeats per candidate (median reported)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the work, for a smoke test")
    parser.add_argument("--only", default="", help="run only the rows whose name contains this text")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    number = max(1000, int(200_000 * scale))

    rows = [(row, uncontended_candidates(attribute, arguments, statement, number))
            for row, attribute, arguments, statement in UNCONTENDED]
    rows += cross_process_rows(scale)
    rows = [(row, candidates) for row, candidates in rows if args.only.lower() in row.lower()]

    print(f"# {os.cpu_count()} cores, medians of {args.repeat} interleaved repeats, time per operation")
    table = []
    for row, candidates in rows:
        result = medians(interleaved(candidates, args.repeat))
        shm, mp, th = result.get("shmproc"), result.get("multiprocessing"), result.get("threading")
        table.append([row, format_seconds(shm), format_seconds(mp), format_seconds(th),
                      format_ratio(shm, mp), format_ratio(shm, th), format_ratio(mp, shm)])
        print(f"  done: {row}", flush=True)
    print(format_table(["operation", "shmproc", "multiprocessing", "threading",
                        "shmproc/mp", "shmproc/threading", "speed-up vs mp"], table))


if __name__ == "__main__":
    main()
