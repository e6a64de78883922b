"""Run CPython's own manager tests (test._test_multiprocessing) against shmproc.managers.

Usage: SHMPROC_START_METHOD=fork python -m tests.support_managers_cpython [unittest arguments]

shmproc.managers is installed as multiprocessing.managers before the test module is imported (here
and in every child, which imports this module again under spawn), so the tests'
``multiprocessing.Manager()``, their ``BaseManager`` subclasses and their remote managers are
shmproc's. Only the manager-flavoured classes are collected (the process- and thread-flavoured
ones test other modules), plus TestSyncManagerTypes.
"""
import faulthandler
import multiprocessing
import os
import sys
import unittest

import shmproc.managers

sys.modules["multiprocessing.managers"] = shmproc.managers
multiprocessing.managers = shmproc.managers

import test._test_multiprocessing as cpython_tests  # noqa: E402  (after the substitution above)

assert cpython_tests.BaseManager is shmproc.managers.BaseManager

START_METHOD = os.environ.get("SHMPROC_START_METHOD", "fork")
cpython_tests.install_tests_in_module_dict(globals(), START_METHOD, only_type="manager")


class TestSyncManagerTypes(cpython_tests.TestSyncManagerTypes):
    pass


if __name__ == "__main__":
    # A hang becomes a traceback of every thread, then an exit.
    faulthandler.dump_traceback_later(float(os.environ.get("SHMPROC_TEST_TIMEOUT", "240")), exit=True)
    unittest.main(module=__name__, verbosity=1)
