"""A parent process for the lifetime tests, run as a script: it starts shmproc children, prints
their pids, and then either exits or waits to be killed.

    python support_lifetime.py parent-death METHOD [thread] [opt-out] [core-prctl] [non-daemonic]
                               [every-child]
        start a child that sleeps (daemonic unless asked), print its pid, sleep (the test
        SIGKILLs this process); every-child: set_parent_death_signal(SIGKILL, daemonic_only=False)
    python support_lifetime.py at-exit METHOD MARKER
        start a daemonic child that sleeps and a non-daemonic one that writes MARKER after a
        moment, print both pids, and return: exit must terminate the one and join the other
"""
import signal
import sys
import threading
import time

from support_process import sleep_for, sleep_holding

from shmproc import context, parent_death


def write_marker_later(path):
    time.sleep(0.5)
    with open(path, "w") as marker:
        marker.write("joined")


def parent_death_case(method, options):
    if "opt-out" in options:
        parent_death.set_parent_death_signal(None)
    if "every-child" in options:
        parent_death.set_parent_death_signal(signal.SIGKILL, daemonic_only=False)
    if "core-prctl" in options:
        # The child's target takes a shared lock, so the core is loaded in the child before
        # it is armed: the prctl path.
        from shmproc import synchronize
        target, args = sleep_holding, (synchronize.Lock(), 60)
    else:
        target, args = sleep_for, (60,)
    shm_ctx = context._default_context.get_context(method)
    child = shm_ctx.Process(target=target, args=args, daemon="non-daemonic" not in options)
    if "thread" in options:
        # Started from a thread that then ends: the child must outlive the thread, and still
        # die with the process.
        starter = threading.Thread(target=child.start)
        starter.start()
        starter.join()
    else:
        child.start()
    print(child.pid, flush=True)
    time.sleep(60)


def at_exit_case(method, marker):
    shm_ctx = context._default_context.get_context(method)
    daemonic = shm_ctx.Process(target=sleep_for, args=(60,), daemon=True)
    joined = shm_ctx.Process(target=write_marker_later, args=(marker,))
    daemonic.start()
    joined.start()
    print(daemonic.pid, joined.pid, flush=True)


if __name__ == "__main__":
    case, method, *rest = sys.argv[1:]
    if case == "parent-death":
        parent_death_case(method, rest)
    else:
        at_exit_case(method, rest[0])
