"""shmproc.synchronize's primitives against multiprocessing's (and threading's, in one process):
lock acquire+release, a shared counter, a barrier round between processes. The cross-process
workloads (barrier round, condition ping-pong, contended lock) are defined here and only here;
asv_bench/compare_synchronize.py imports them.

Both libraries' primitives are exercised from processes started the same way (multiprocessing's
fork context), so only the primitive differs."""
import time

from .common import (
    FORK,
    JOIN_TIMEOUT,
    LIBRARIES,
    factories,
    implementation,
    per_call,
    pinned,
    placed,
    placement,
    running,
    side_by_side_ratio,
)
from .sharedctypes import increment

CALLS = 1000


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


class LockAcquireRelease:
    params = [list(LIBRARIES) + ["threading"]]
    param_names = ["library"]

    def setup(self, library):
        self.lock = implementation(library, "Lock")()

    def time_acquire_release_1000(self, library):
        acquire, release = self.lock.acquire, self.lock.release
        for _ in range(CALLS):
            acquire()
            release()

    def time_with_1000(self, library):
        lock = self.lock
        for _ in range(CALLS):
            with lock:
                pass


class LockFootprint:
    """Peak memory of this process holding 1000 locks (multiprocessing's are POSIX semaphores,
    shmproc's are 64-byte blocks of a shared arena)."""
    params = [list(LIBRARIES)]
    param_names = ["library"]

    def setup(self, library):
        self.factory = implementation(library, "Lock")

    def peakmem_1000_locks(self, library):
        self.locks = [self.factory() for _ in range(CALLS)]


def _counters_in_processes(counter, way, processes=2, times=5000):
    workers = [FORK.Process(target=increment, args=(counter, times, way)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    if any(worker.exitcode != 0 for worker in workers):
        raise RuntimeError("a counting process failed or hung")


def _counter(library, way):
    counter = implementation(library, "Value")("i", 0)
    if way == "fetch_add(1)" and not hasattr(counter, "fetch_add"):
        raise NotImplementedError(f"{library}'s Value has no atomic fetch_add")
    return counter


class SharedCounter:
    """A synchronized Value('i') incremented under its own lock, as multiprocessing's docs show."""
    params = [list(LIBRARIES)]
    param_names = ["library"]
    number = 1
    repeat = (3, 10, 20.0)
    warmup_time = 0
    way = "locked += 1"

    def setup(self, library):
        self.counter = _counter(library, self.way)

    def time_increment_1000(self, library):
        increment(self.counter, CALLS, self.way)

    def time_increment_2_processes_x_5000(self, library):
        _counters_in_processes(self.counter, self.way)


class AtomicCounter(SharedCounter):
    """shmproc's lock-free Value.fetch_add(1) (multiprocessing has none)."""
    params = [["shmproc"]]
    way = "fetch_add(1)"


PLACEMENTS = {
    "2 processes on 2 cores": (2, "apart"),
    "2 processes on 1 core": (2, "together"),
    "3 processes on 2 cores": (3, "apart"),
}


class BarrierRound:
    """Seconds per round of processes meeting at a Barrier (pinned to CPUs, see common.py)."""
    params = [list(LIBRARIES), list(PLACEMENTS)]
    param_names = ["library", "placement"]
    unit = "seconds"
    timeout = 120

    def setup(self, library, placement):
        implementation(library, "Barrier")

    def track_round(self, library, placement):
        parties, layout = PLACEMENTS[placement]
        return barrier_round(factories(library), parties, 500, layout)


def _timed(function, *args):
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


class CounterShmprocOverMultiprocessing:
    """2 processes x 5000 increments: shmproc's lock-free fetch_add over the locked `+= 1` that a
    multiprocessing program must write, measured side by side (unit "ratio")."""
    unit = "ratio"
    timeout = 120

    def setup(self):
        self.atomic = _counter("shmproc", "fetch_add(1)")
        self.locked = _counter("multiprocessing", "locked += 1")

    def track_fetch_add_over_locked_increment(self):
        return side_by_side_ratio(lambda: _timed(_counters_in_processes, self.atomic, "fetch_add(1)"),
                                  lambda: _timed(_counters_in_processes, self.locked, "locked += 1"))


class ShmprocOverMultiprocessing:
    """shmproc's time over multiprocessing's, both measured in one process, interleaved."""
    unit = "ratio"
    timeout = 120

    def track_lock_acquire_release(self):
        locks = [implementation(library, "Lock")() for library in LIBRARIES]
        timers = [per_call("acquire(); release()", {"acquire": lock.acquire, "release": lock.release}, 100_000)
                  for lock in locks]
        return side_by_side_ratio(*timers)

    def track_barrier_round_2_processes_on_2_cores(self):
        implementation("shmproc", "Barrier")
        return side_by_side_ratio(*[lambda library=library: barrier_round(factories(library), 2, 500, "apart")
                                    for library in LIBRARIES])
