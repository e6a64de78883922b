"""Cross-process measurements of synchronization primitives, shared by
asv_bench/compare_synchronize.py and the asv suite.

Both libraries' primitives are exercised from processes started the same way
(multiprocessing.get_context("fork")), so only the primitive differs. The processes are pinned to
CPUs where it matters: unpinned, the scheduler sometimes puts two of them on one CPU and sometimes
not, and a run's figures jump between those two cases.
"""
import multiprocessing
import os
import time

__all__ = ["FORK", "barrier_round", "condition_ping_pong", "contended_lock", "placement"]

FORK = multiprocessing.get_context("fork")
JOIN_TIMEOUT = 60


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
    children = [FORK.Process(target=placed, args=(cpu, _lock_hammer, lock, go, iterations))
                for cpu in cpus[1:]]
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
