"""The pool's fault soak (pool_soak.py) under an external watchdog: this test runs it in a child
interpreter with a hard timeout, so a hang is a failure with the child's output, not a stuck run."""
import os
import subprocess
import sys

import pytest

SOAK = os.path.join(os.path.dirname(__file__), "pool_soak.py")


@pytest.mark.stress
@pytest.mark.timeout(120)
@pytest.mark.parametrize("method,retries", [("fork", 0), ("fork", 2), ("spawn", 0)])
def test_pool_survives_random_sigkills_without_hanging_or_duplicating(method, retries):
    seconds = 6 if method == "fork" else 4
    env = dict(os.environ, SOAK_RETRIES=str(retries))
    try:
        run = subprocess.run([sys.executable, SOAK, str(seconds), method], capture_output=True,
                             text=True, timeout=seconds + 60, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the soak hung; its output so far:\n{exc.stdout}\n{exc.stderr}")
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "soak ok" in run.stdout
