"""CPython's own Pool tests (test._test_multiprocessing), pointed at shmproc.Pool.

Run as a script: ``python tests/cpython_pool_suite.py fork|spawn``. The standard library's test
classes are imported and run, not copied: their ``Pool`` (and the ``multiprocessing.Pool`` that
some of them call directly) becomes shmproc's for the given start method. A spawned worker
imports this file again as its main module (with the parent's argv), so the test classes, whose
methods the tests send to workers, exist there too.
"""
import multiprocessing
import sys
import types
import unittest

import test._test_multiprocessing as cpython_tests

import shmproc

POOL_CLASSES = ("WithProcessesTestPool", "WithProcessesTestPoolWorkerErrors",
                "WithProcessesTestPoolWorkerLifetime")


def point_at_shmproc(method):
    context = shmproc.get_context(method)

    def pool(*args, **kwargs):
        return context.Pool(*args, **kwargs)

    class MultiprocessingWithShmprocPool(types.ModuleType):
        Pool = staticmethod(pool)

        def __getattr__(self, name):
            return getattr(multiprocessing, name)

    cpython_tests.ProcessesMixin.Pool = staticmethod(pool)
    cpython_tests.multiprocessing = MultiprocessingWithShmprocPool("multiprocessing")


def main():
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(globals()[name])
                               for name in POOL_CLASSES)
    setUpModule()   # noqa: F821 (installed below)
    try:
        outcome = unittest.TextTestRunner(verbosity=2).run(suite)
    finally:
        tearDownModule()   # noqa: F821
    return 0 if outcome.wasSuccessful() else 1


START_METHOD = sys.argv[1] if len(sys.argv) > 1 else "fork"
point_at_shmproc(START_METHOD)
cpython_tests.install_tests_in_module_dict(globals(), START_METHOD, only_type="processes")

if __name__ == "__main__":
    sys.exit(main())
