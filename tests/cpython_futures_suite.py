"""CPython's own ProcessPoolExecutor tests (test_concurrent_futures), pointed at shmproc's executor.

Run as a script: ``python tests/cpython_futures_suite.py PATH fork|spawn|forkserver [Class.test ...]``
where PATH is the standard library's test_concurrent_futures.py (Debian ships it in
libpython3.11-testsuite; the Python running this may have a ``test`` package without it). The file
is loaded by path, not copied. Before it loads, ``concurrent.futures.ProcessPoolExecutor`` becomes
shmproc's in this interpreter only, so the suite's mixins (``executor_type``) and its direct
``futures.ProcessPoolExecutor(...)`` calls both build shmproc's executor. The module is registered as
``test.test_concurrent_futures``: a spawned worker imports this file again as its main module (with
the parent's argv), which loads the suite again, so the functions the tests send resolve there too.
The optional ``Class.test`` arguments are tests not run (excluded; the caller says why). With
``SHMPROC_VERDICTS=path``, each test's verdict is written there as JSON (``Class.test`` -> ok, fail,
error or skip), which the caller reads instead of parsing unittest's interleaved output.
"""
import concurrent.futures
import gc
import importlib.util
import json
import os
import sys
import unittest

import shmproc.futures

MODULE_NAME = "test.test_concurrent_futures"
# The executor's classes the suite builds per start method (create_executor_tests), without the
# start method's prefix: ProcessPoolFork + "InitializerTest" is the class for fork.
CLASS_SUFFIXES = ("InitializerTest", "FailingInitializerTest", "ProcessPoolShutdownTest",
                  "WaitTest", "AsCompletedTest", "ProcessPoolExecutorTest",
                  "ExecutorDeadlockTest")
PREFIXES = {"fork": "ProcessPoolFork", "spawn": "ProcessPoolSpawn",
            "forkserver": "ProcessPoolForkserver"}


def load_suite(path):
    concurrent.futures.ProcessPoolExecutor = shmproc.futures.ProcessPoolExecutor
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def selected_tests(module, method, excluded):
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for suffix in CLASS_SUFFIXES:
        cls = getattr(module, PREFIXES[method] + suffix)
        for name in loader.getTestCaseNames(cls):
            if f"{suffix}.{name}" not in excluded:
                suite.addTest(cls(name))
    return suite


def verdicts(outcome, method):
    """``Class.test`` (class without the start method's prefix) -> ok, fail, error or skip."""
    def key(test):
        return type(test).__name__[len(PREFIXES[method]):] + "." + test._testMethodName

    found = {key(test): "ok" for test in outcome.tests_run}
    for verdict, entries in (("fail", outcome.failures), ("error", outcome.errors),
                             ("skip", outcome.skipped)):
        for test, _ in entries:
            if isinstance(test, unittest.TestCase):
                found[key(test)] = verdict
    return found


class _RecordingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tests_run = []

    def startTest(self, test):
        self.tests_run.append(test)
        super().startTest(test)


def main(module, method, excluded):
    module.setUpModule()
    runner = unittest.TextTestRunner(verbosity=2, resultclass=_RecordingResult)
    try:
        outcome = runner.run(selected_tests(module, method, excluded))
        if os.environ.get("SHMPROC_VERDICTS"):
            with open(os.environ["SHMPROC_VERDICTS"], "w") as out:
                json.dump(verdicts(outcome, method), out, indent=1, sort_keys=True)
    finally:
        # A failed _check_crash leaves its executor unshut; collect it (which ends its workers)
        # before the suite's cleanup waits for the resource tracker those workers keep open.
        gc.collect()
        unittest.case.doModuleCleanups()
    return 0 if outcome.wasSuccessful() else 1


if len(sys.argv) > 2:
    SUITE = load_suite(sys.argv[1])

if __name__ == "__main__":
    sys.exit(main(SUITE, sys.argv[2], set(sys.argv[3:])))
