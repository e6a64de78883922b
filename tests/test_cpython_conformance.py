"""CPython's own multiprocessing tests (test._test_multiprocessing), run against shmproc under fork and
spawn. See tests/support_cpython_mp.py for how the installed suite is pointed at shmproc.

By default a subset that fits CI's time runs; ``SHMPROC_CPYTHON_SUITE=full`` runs every class listed
below (the figures in docs/conformance.md come from that run). Tests shmproc does not pass on
purpose are skipped here with the reason; docs/differences.md lists them.
"""
import os
import unittest

import pytest

import shmproc

# Some distributions ship Python without its test package.
pytest.importorskip("test._test_multiprocessing")
import support_cpython_mp as suite  # noqa: E402 - after the check above

START_METHODS = ("fork", "spawn")

# The suite's classes for what shmproc provides: processes, queues, locks and synchronization,
# shared ctypes, connections, listeners, pickled connections (pools: see below).
PROCESS_CLASSES = (
    "TestProcess", "TestSubclassingProcess", "TestQueue", "TestLock", "TestSemaphore",
    "TestCondition", "TestEvent", "TestBarrier", "TestValue", "TestArray", "TestSharedCTypes",
    "TestConnection", "TestListener", "TestListenerClient", "TestPoll", "TestPicklingConnections",
    "TestPollEintr", "TestFinalize", "TestLogging",
)
PLAIN_CLASSES = (
    "TestWait", "TestInvalidFamily", "OtherTest", "TestTimeouts", "TestSimpleQueue",
    "TestIgnoreEINTR", "TestStdinBadfiledescriptor", "TestNoForkBomb", "TestCloseFds",
    "TestInvalidHandle", "TestForkAwareThreadLock", "TestInitializers", "TestPoolNotLeakOnFailure",
)
# The pool's own classes (TestPool, TestPoolWorkerErrors, TestPoolWorkerLifetime) run in
# tests/test_pool_cpython.py, in a child interpreter: their pool lives for the whole class, which
# this suite's per-test guard against leftover children forbids.
# The CI subset: quick classes that still cover every area above.
CI_PROCESS_CLASSES = (
    "TestQueue", "TestLock", "TestSemaphore", "TestEvent", "TestValue", "TestArray",
    "TestConnection", "TestListener", "TestListenerClient", "TestPoll", "TestPicklingConnections",
)
CI_PLAIN_CLASSES = ("TestWait", "TestInvalidFamily", "OtherTest", "TestTimeouts", "TestSimpleQueue",
                    "TestPoolNotLeakOnFailure")

# test id (Class.method, class without the WithProcesses prefix) -> why shmproc does not run it.
# docs/differences.md, "CPython's test-suite", lists the same.
_PRIVATE = "inspects the standard library's private attributes"
EXCLUDED = {
    "TestCondition.test_notify": _PRIVATE + " (Condition._sleeping_count, _woken_count)",
    "TestCondition.test_notify_all": _PRIVATE + " (Condition._sleeping_count, _woken_count)",
    "TestCondition.test_notify_n": _PRIVATE + " (Condition._sleeping_count, _woken_count)",
    "TestQueue.test_queue_feeder_on_queue_feeder_error":
        _PRIVATE + " (the feeder thread's Queue._on_queue_feeder_error hook)",
    "TestSimpleQueue.test_closed": _PRIVATE + " (SimpleQueue._reader, _writer)",
    "TestQueue.test_queue_feeder_donot_stop_onexc":
        "multiprocessing loses the data: its feeder thread drops an object that fails to "
        "pickle, where shmproc's put() raises in the caller",
    "TestConnection.test_missing_fd_transfer":
        "writes raw bytes into conn.fileno(), which for a shmproc Pipe is the notify "
        "descriptor, not the data channel",
}

FULL = os.environ.get("SHMPROC_CPYTHON_SUITE") == "full"


def _with_start_method(base, method, name):
    """The suite's class, run with shmproc's default start method set to ``method``."""

    class Conformance(base):
        @classmethod
        def setUpClass(cls):
            cls._previous_start_method = shmproc.get_start_method(allow_none=True)
            shmproc.set_start_method(method, force=True)
            super().setUpClass()

        @classmethod
        def tearDownClass(cls):
            try:
                super().tearDownClass()
            finally:
                shmproc.set_start_method(cls._previous_start_method, force=True)

    Conformance.__name__ = Conformance.__qualname__ = name
    Conformance.__module__ = __name__
    for attribute in dir(Conformance):
        reason = EXCLUDED.get(f"{base.__name__.removeprefix('WithProcesses')}.{attribute}")
        if reason is not None:
            setattr(Conformance, attribute, unittest.skip(reason)(getattr(Conformance, attribute)))
    return Conformance


def _install():
    installed = {"__name__": __name__}
    suite.install_tests_in_module_dict(installed, "fork")
    processes = PROCESS_CLASSES if FULL else CI_PROCESS_CLASSES
    plain = PLAIN_CLASSES if FULL else CI_PLAIN_CLASSES
    names = ["WithProcesses" + name for name in processes] + list(plain)
    for method in START_METHODS:
        for name in names:
            qualified = f"{name}_{method}"
            globals()[qualified] = _with_start_method(installed[name], method, qualified)
    return installed


_installed = _install()


def setup_module():
    _installed["setUpModule"]()


def teardown_module():
    _installed["tearDownModule"]()


pytestmark = pytest.mark.timeout(120)
