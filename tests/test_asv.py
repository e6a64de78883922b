"""The asv suite cannot rot: `asv check` passes and one quick pass over every benchmark runs, in
this interpreter (--python=same), with no failure. Skips (a shmproc feature this commit lacks) are
allowed; a multiprocessing or threading row must have a figure. No timings are asserted."""
import math

import pytest
import support_asv

pytestmark = [
    pytest.mark.skipif(not support_asv.asv_installed(), reason="asv is not installed (pip install asv)"),
    pytest.mark.timeout(support_asv.RUN_TIMEOUT + 60),
]

ANCHORS = ("'multiprocessing'", "'threading'", "'serial'", "'threads'")


@pytest.fixture(scope="module")
def asv_run():
    return support_asv.quick_run()


def test_asv_check_finds_no_problems(asv_run):
    assert asv_run.check.returncode == 0, asv_run.check.stdout + asv_run.check.stderr
    assert "No problems found" in asv_run.check.stdout


def test_quick_run_of_the_whole_suite_has_no_failure(asv_run):
    output = asv_run.run.stdout + asv_run.run.stderr
    assert asv_run.run.returncode == 0, output[-4000:]
    assert "failed" not in output, output[-4000:]
    results = asv_run.results()
    for module in ("pep371", "synchronize", "imports"):
        assert any(name.startswith(module + ".") for name in results), f"no {module} benchmark ran"
    for name, entry in results.items():
        values = entry["result"]
        assert values is not None and all(value is not None for value in values), f"{name} failed"


def test_every_anchor_row_has_a_figure(asv_run):
    for name, entry in asv_run.results().items():
        params = entry["params"]
        values = entry["result"]
        if not params:
            continue            # no anchor to tell apart: a skip there is shmproc's to explain
        combinations = _combinations(params)
        assert len(combinations) == len(values), name
        for combination, value in zip(combinations, values):
            if any(anchor in combination for anchor in ANCHORS) and "'shmproc'" not in combination:
                assert math.isfinite(value), f"{name}{combination} has no figure"


def _combinations(params):
    combinations = [()]
    for choices in params:
        combinations = [done + (choice,) for done in combinations for choice in choices]
    return combinations


UNITS = {"seconds", "bytes", "ratio"}


def test_every_tracked_figure_says_its_unit(asv_run):
    # asv reads a track_* figure without a unit as a number of seconds on the dashboard (a byte
    # count of a megabyte showed as "1.734w"): each one must name seconds, bytes or a ratio.
    import json
    import os
    with open(os.path.join(asv_run.folder, "results", "benchmarks.json")) as source:
        benchmarks = json.load(source)
    tracked = {name: entry["unit"] for name, entry in benchmarks.items()
               if isinstance(entry, dict) and entry.get("type") == "track"}
    assert tracked, "no track_* benchmark found"
    wrong = {name: unit for name, unit in tracked.items() if unit not in UNITS}
    assert not wrong, wrong
    for name, unit in tracked.items():
        if "bytes" in name:
            assert unit == "bytes", name
        if "Over" in name or name.endswith("_ratio"):
            assert unit == "ratio", name
