"""Managers: shmproc.Manager() against multiprocessing.Manager(), through the public API only.
`asv_bench/compare_managers.py` prints the same figures without asv, side by side with ratios.
"""
from . import manager_workloads
from .common import LIBRARIES, side_by_side_ratio

CALLS = 1000


def bench_helpers():
    """The workloads (manager_workloads.py), or NotImplementedError (asv: skipped) when the
    shmproc being measured has no managers of its own."""
    try:
        import shmproc.managers  # noqa: F401
    except ImportError:
        raise NotImplementedError("shmproc has no managers of its own in this version") from None
    return manager_workloads


class OneClient:
    """Calls on manager objects from the process that started the manager."""
    params = [list(LIBRARIES)]
    param_names = ["library"]
    timeout = 120

    def setup(self, library):
        helpers = bench_helpers()
        self.manager = helpers.start_manager(library)
        objects = helpers.shared_objects(self.manager)
        self.d, self.lst, self.ns, self.q = objects["d"], objects["lst"], objects["ns"], objects["q"]

    def teardown(self, library):
        self.manager.shutdown()

    def time_dict_set_1000(self, library):
        d = self.d
        for i in range(CALLS):
            d[7] = i

    def time_dict_get_1000(self, library):
        d = self.d
        for _ in range(CALLS):
            d[7]

    def time_list_append_1000(self, library):
        append = self.lst.append
        for i in range(CALLS):
            append(i)

    def time_namespace_read_1000(self, library):
        ns = self.ns
        for _ in range(CALLS):
            ns.x

    def time_queue_put_get_1000(self, library):
        q = self.q
        for i in range(CALLS):
            q.put(i)
            q.get()


class ClientProcesses:
    """multiprocessing's time over shmproc's for 1 and 4 forked clients doing d[k] = v; d[k] on one
    manager dict, measured side by side in one run (unit: ratio; the target is >= 5)."""
    params = [[1, 4]]
    param_names = ["clients"]
    unit = "ratio"
    timeout = 300

    def setup(self, clients):
        self.helpers = bench_helpers()
        self.managers = {name: self.helpers.start_manager(name) for name in LIBRARIES}
        self.dicts = {name: manager.dict() for name, manager in self.managers.items()}

    def teardown(self, clients):
        for manager in self.managers.values():
            manager.shutdown()

    def track_speedup_over_multiprocessing(self, clients):
        def timer(name):
            return lambda: self.helpers.dict_from_clients(self.dicts[name], clients, 2000)
        return side_by_side_ratio(timer("multiprocessing"), timer("shmproc"), repeat=3)
