"""CPython's own Pool test classes (test._test_multiprocessing), run against shmproc.Pool under
fork and spawn in a child interpreter (tests/cpython_pool_suite.py), as CPython runs them."""
import os
import subprocess
import sys

import pytest

SUITE = os.path.join(os.path.dirname(__file__), "cpython_pool_suite.py")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_cpython_pool_tests_pass_on_shmproc(method):
    pytest.importorskip("test._test_multiprocessing")
    run = subprocess.run([sys.executable, SUITE, method], capture_output=True, text=True,
                         timeout=220)
    assert run.returncode == 0, run.stderr[-5000:]
    assert "Ran 31 tests" in run.stderr or "OK" in run.stderr
