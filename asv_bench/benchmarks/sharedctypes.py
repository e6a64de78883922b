"""shmproc.sharedctypes against multiprocessing.sharedctypes: `.value`, indexing, the locked
increment that multiprocessing's documentation shows, shmproc's atomics, and the two counter targets
of docs/sharedctypes.md at full size (2 processes x 200,000). The counting workload is defined here
and only here; `asv_bench/compare_sharedctypes.py` imports it and prints the same figures without
asv. (synchronize.py's SharedCounter times the small 2 x 5000 variant.)

Processes for both libraries are started the same way (multiprocessing's fork context) so only the
shared object differs; counting children are pinned one per core (common.py).
"""
import time

from .common import FORK, LIBRARIES, placed, placement, running, side_by_side_ratio

CALLS = 1000


COUNTER_WAYS = ("locked += 1", "with v: += 1", "fetch_add(1)")


def increment(value, times, way):
    """The loop a user writes: multiprocessing's documented `with v.get_lock(): v.value += 1`, the
    same under the wrapper's own `with v:`, or shmproc's lock-free fetch_add."""
    if way == "fetch_add(1)":
        fetch_add = value.fetch_add
        for _ in range(times):
            fetch_add(1)
    elif way == "with v: += 1":
        for _ in range(times):
            with value:
                value.value += 1
    else:
        for _ in range(times):
            with value.get_lock():
                value.value += 1


def _counting_child(value, times, way, go):
    go.wait()
    increment(value, times, way)


def counter_in_processes(library, way, processes=2, times=200_000, layout="apart"):
    """Seconds from the start signal until `processes` children have each incremented one shared
    Value('i') `times` times; checks the exact total."""
    value = library.Value("i", 0)
    go = FORK.Event()
    cpus = placement(layout, processes)
    children = [FORK.Process(target=placed, args=(cpu, _counting_child, value, times, way, go))
                for cpu in cpus]
    with running(children):
        time.sleep(0.05)            # let every child reach go.wait()
        start = time.perf_counter()
        go.set()
        for child in children:
            child.join(60)
        elapsed = time.perf_counter() - start
    if value.value != processes * times:
        raise RuntimeError(f"lost increments: {value.value} != {processes * times}")
    return elapsed




def sharedctypes_of(library):
    """The module or context whose Value/Array are timed; NotImplementedError (asv: skipped) when
    this commit of shmproc has no sharedctypes."""
    if library == "multiprocessing":
        return FORK
    try:
        from shmproc import sharedctypes
    except ImportError:
        raise NotImplementedError("shmproc.sharedctypes is not available in this version") from None
    return sharedctypes


class ValueAndArrayAccess:
    params = [list(LIBRARIES)]
    param_names = ["library"]

    def setup(self, library):
        module = sharedctypes_of(library)
        self.value = module.Value("i", 0)
        self.array = module.Array("d", 10)

    def time_value_read_1000(self, library):
        value = self.value
        for _ in range(CALLS):
            value.value

    def time_value_write_1000(self, library):
        value = self.value
        for _ in range(CALLS):
            value.value = 1

    def time_locked_increment_1000(self, library):
        value = self.value
        for _ in range(CALLS):
            with value.get_lock():
                value.value += 1

    def time_array_getitem_1000(self, library):
        array = self.array
        for _ in range(CALLS):
            array[3]

    def time_array_setitem_1000(self, library):
        array = self.array
        for _ in range(CALLS):
            array[3] = 1.5


class ValueCreation:
    params = [list(LIBRARIES)]
    param_names = ["library"]

    def setup(self, library):
        self.module = sharedctypes_of(library)

    def time_value_100(self, library):
        make = self.module.Value
        self.values = [make("i", 0) for _ in range(100)]


class Atomics:
    """shmproc's lock-free operations on an integer Value (multiprocessing has none)."""

    def setup(self):
        self.value = sharedctypes_of("shmproc").Value("q", 0)

    def time_fetch_add_1000(self):
        fetch_add = self.value.fetch_add
        for _ in range(CALLS):
            fetch_add(1)

    def time_load_1000(self):
        load = self.value.load
        for _ in range(CALLS):
            load()

    def time_compare_exchange_1000(self):
        compare_exchange = self.value.compare_exchange
        for number in range(CALLS):
            compare_exchange(number, number)


class CounterTwoProcesses:
    """Seconds for 2 pinned processes x 200,000 `with v.get_lock(): v.value += 1` on one Value."""
    params = [list(LIBRARIES)]
    param_names = ["library"]
    unit = "seconds"
    timeout = 120
    way = "locked += 1"

    def setup(self, library):
        self.module = sharedctypes_of(library)
        self.measure = counter_in_processes

    def track_2_processes_x_200000(self, library):
        return self.measure(self.module, self.way)


class AtomicCounterTwoProcesses(CounterTwoProcesses):
    """The same count with shmproc's lock-free fetch_add(1) (multiprocessing has none)."""
    params = [["shmproc"]]
    way = "fetch_add(1)"


class SharedctypesShmprocOverMultiprocessing:
    """shmproc's time over multiprocessing's for the two counter targets, interleaved in one run
    (unit "ratio": below 1/3 and 1/10 meet the targets)."""
    unit = "ratio"
    timeout = 180

    def setup(self):
        self.shmproc = sharedctypes_of("shmproc")
        self.measure = counter_in_processes

    def track_locked_increment_2_processes(self):
        return side_by_side_ratio(lambda: self.measure(self.shmproc, "locked += 1"),
                                  lambda: self.measure(FORK, "locked += 1"), repeat=3)

    def track_fetch_add_over_mp_locked_increment_2_processes(self):
        return side_by_side_ratio(lambda: self.measure(self.shmproc, "fetch_add(1)"),
                                  lambda: self.measure(FORK, "locked += 1"), repeat=3)
