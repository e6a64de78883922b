"""Which build of the compiled core the tests run on. .ci/run runs part of the suite a second time
on a debug build (SHMPROC_DEBUG=1, see setup.py) and says so with SHMPROC_EXPECT_DEBUG=1: these
tests make sure that run really had bounds checks and assertions compiled in."""
import os

import pytest

from shmproc import _core

EXPECTED = os.environ.get("SHMPROC_EXPECT_DEBUG")


def test_debug_flag_is_a_bool():
    assert _core.DEBUG in (True, False)


@pytest.mark.skipif(EXPECTED is None, reason="SHMPROC_EXPECT_DEBUG is set only by .ci/run's runs")
def test_the_build_is_the_one_ci_asked_for():
    assert _core.DEBUG == (EXPECTED == "1"), f"_core.DEBUG is {_core.DEBUG}, CI expected {EXPECTED}"


@pytest.mark.skipif(not _core.DEBUG, reason="only the debug build is compiled without optimisation")
def test_a_debug_build_is_compiled_for_the_debugger():
    # gcc records its command line in the debug information (DW_AT_producer): -O0 with -g. setup.py
    # also undefines NDEBUG there, so the C assert()s of includes/ are live.
    with open(_core.__file__, "rb") as extension:
        image = extension.read()
    assert b" -O0" in image and b" -g" in image
