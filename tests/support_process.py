"""Module-level child targets for the process and context tests (spawned children import them)."""
import logging
import os
import sys
import threading
import time
from multiprocessing import process as mp_process


def do_nothing():
    pass


def exit_with(code):
    sys.exit(code)


def raise_value_error():
    raise ValueError("raised in the child on purpose")


def sleep_for(seconds):
    time.sleep(seconds)


def report_identity(conn):
    """Send what the child sees of itself and its parent."""
    me = mp_process.current_process()
    parent = mp_process.parent_process()
    conn.send({
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "name": me.name,
        "ident": me.ident,
        "daemon": me.daemon,
        "authkey": bytes(me.authkey),
        "parent_name": parent.name,
        "parent_pid": parent.pid,
        "parent_alive": parent.is_alive(),
        "children": len(mp_process.active_children()),
        "stdin_closed_or_devnull": sys.stdin is None or sys.stdin.read() == "",
    })
    conn.close()


def report_stdin_and_parent(conn):
    conn.send((os.fstat(sys.stdin.fileno()).st_rdev == os.stat(os.devnull).st_rdev,
               mp_process.parent_process().is_alive()))
    conn.close()


def send_args(conn, *args, **kwargs):
    conn.send((args, kwargs))
    conn.close()


def report_start_method(conn):
    from shmproc import context
    conn.send(context._default_context.get_start_method())
    conn.close()


def start_grandchild_and_report(conn, method):
    """Start a child from this child: names and counters restart in every process."""
    from shmproc import context
    child = context._default_context.get_context(method).Process(target=do_nothing)
    child.start()
    child.join(10)
    conn.send((child.name, child.exitcode))
    conn.close()


def log_something():
    from shmproc import util
    util.get_logger().info("hello from the child")


def use_primitives(lock, event, semaphore, done):
    with lock:
        pass
    semaphore.acquire()
    semaphore.release()
    event.wait(10)
    done.set()


def use_more_primitives(rlock, condition, barrier):
    with rlock:
        with rlock:
            pass
    with condition:
        condition.notify_all()
    barrier.wait()


def bump_shared(value, array):
    with value.get_lock():
        value.value += 1
    for index in range(len(array)):
        array[index] = -array[index]


def echo_through(queue, conn):
    conn.send(queue.get(timeout=30))
    conn.close()


def negate_in_place(array):
    array *= -1


def sleep_in_thread_then_exit(seconds):
    """Leave a non-daemon thread running: the child must wait for it before it ends."""
    threading.Thread(target=time.sleep, args=(seconds,)).start()


def set_logging_level(level):
    logging.getLogger("multiprocessing").setLevel(level)


def sleep_holding(lock, seconds):
    """Sleep with a shared object among the arguments (so the child has the core loaded)."""
    time.sleep(seconds)
