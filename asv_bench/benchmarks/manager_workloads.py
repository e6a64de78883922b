"""Workloads for the manager benchmarks (asv_bench/compare_managers.py and the asv suite): their
one home, beside the queue, lock and value workloads.

Both libraries' managers are started the same way (a fork context's process) and used only through
their public API: ``shmproc.Manager()`` against ``multiprocessing.Manager()``.
"""
import multiprocessing
import multiprocessing.managers
import time

FORK = multiprocessing.get_context("fork")

# (row, statement on the objects d, lst, ns, q, target speed-up)
ONE_CLIENT = [
    ("d[k] = v", "d[7] = 12345", ">= 5"),
    ("d[k]", "d[7]", ">= 5"),
    ("list.append", "lst.append(1)", ">= 5"),
    ("Namespace attribute read", "ns.x", ">= 5"),
    ("Namespace attribute write", "ns.x = 2", ""),
    ("Queue put + get", "q.put(1); q.get()", ">= 5"),
]


def start_manager(library):
    """A started manager of `library` ("shmproc" or "multiprocessing")."""
    manager_class: type
    if library == "shmproc":
        from shmproc import managers
        manager_class = managers.SyncManager
    else:
        manager_class = multiprocessing.managers.SyncManager
    manager = manager_class(ctx=FORK)
    manager.start()
    return manager


def shared_objects(manager):
    """The objects the one-client statements use, with the list emptied now and then by callers."""
    d = manager.dict()
    d[7] = 0
    ns = manager.Namespace(x=1)
    return {"d": d, "lst": manager.list(), "ns": ns, "q": manager.Queue()}


def _clients_body(d, count, offset, go, done):
    d[offset] = 0                 # connected and attached before the clock starts
    done.put("ready")
    go.wait()
    for i in range(count):
        d[offset + i % 64] = i
        d[offset + i % 64]
    done.put(offset)


def dict_from_clients(manager_dict, clients, count):
    """Seconds for `clients` forked processes, started and connected beforehand, to each do
    `count` d[k] = v and d[k] on one manager dict: from the start signal to the last one's report."""
    go, done = FORK.Event(), FORK.SimpleQueue()
    children = [FORK.Process(target=_clients_body, args=(manager_dict, count, 1000 * n, go, done))
                for n in range(clients)]
    for child in children:
        child.start()
    for _ in children:
        done.get()
    started = time.perf_counter()
    go.set()
    for _ in children:
        done.get()
    elapsed = time.perf_counter() - started
    for child in children:
        child.join()
    if any(child.exitcode != 0 for child in children):
        raise RuntimeError("a benchmark client failed")
    return elapsed


def _reader_body(ns, requests, replies):
    while requests.recv():
        array = ns.array
        replies.send(float(array[0]))


class NamespaceArrayReader:
    """A forked child that, on request, reads ``ns.array`` (a shmproc shared ndarray stored in a
    manager Namespace) and answers with its first element."""

    def __init__(self, ns):
        self._requests, child_requests = FORK.Pipe()
        child_replies, self._replies = FORK.Pipe()
        self._child = FORK.Process(target=_reader_body, args=(ns, child_requests, child_replies))
        self._child.start()

    def seconds(self, ns, array):
        """Store `array` in the Namespace and have the child read it."""
        started = time.perf_counter()
        ns.array = array
        self._requests.send(True)
        self._replies.recv()
        return time.perf_counter() - started

    def close(self):
        self._requests.send(False)
        self._child.join()
