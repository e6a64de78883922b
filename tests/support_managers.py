"""Child-process bodies and small servers for tests/test_managers.py (importable under spawn)."""
import os
import signal
import sys
import time

import shmproc
from shmproc.managers import BaseManager


def fill(d, lst, ns, q, start, count):
    for i in range(start, start + count):
        d[i] = i * i
        lst.append(i)
    setattr(ns, f"done_{start}", True)
    q.put(("filled", os.getpid()))


def append_many(lst, count):
    for i in range(count):
        lst.append(i)


def add_many(counter_dict, lock, count):
    for _ in range(count):
        with lock:
            counter_dict["n"] = counter_dict["n"] + 1


def grab_lock_and_exit(lock):
    lock.acquire()
    os._exit(0)


def use_proxy(proxy, q):
    proxy["child"] = os.getpid()
    q.put(proxy["parent"])


class CustomKeyManager(BaseManager):
    pass


class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        self.n += k
        return self.n

    def _hidden(self):
        return "secret"


CustomKeyManager.register("Counter", Counter)


def remote_add(counter, count):
    for _ in range(count):
        counter.add(1)


def orphan_manager_main(ready_path):
    """A process that starts a manager, reports it, then waits to be SIGKILLed."""
    manager = shmproc.Manager()
    d = manager.dict()
    d["x"] = 1
    with open(ready_path + ".tmp", "w") as f:
        f.write(f"{manager._process.pid} {manager.address}")
    os.rename(ready_path + ".tmp", ready_path)
    signal.pause()


if __name__ == "__main__":
    if sys.argv[1] == "orphan":
        orphan_manager_main(sys.argv[2])
    time.sleep(0)
