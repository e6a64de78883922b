"""shmproc.bench and `python -m shmproc bench`: the workloads do their work, the runner times every
mode and surfaces failures, the report and the command line say what they should. Sizes are tiny;
no timing is asserted."""
import importlib
import importlib.util
import io
import json
import multiprocessing
import os
import queue
import re
import subprocess
import sys
import urllib.request

import pytest

import shmproc
from shmproc import __main__ as command
from shmproc.bench import progress, report, runner, timing, workloads
from shmproc.bench.http_server import PAGE, serving
from shmproc.bench.workloads import WORKLOADS, Workload

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"empty": {}, "fibonacci": {"count": 50}, "primes": {"limit": 100}, "file_io": {"seeks": 20},
        "url_get": {"fetches": 2}, "queue": {"items": 50}}


@pytest.fixture
def shmproc_contexts(monkeypatch):
    """shmproc with a get_context, whether or not this build exports one yet."""
    if not hasattr(shmproc, "get_context"):
        monkeypatch.setattr(shmproc, "get_context", multiprocessing.get_context, raising=False)


# --- workloads -----------------------------------------------------------------------------------

def test_sum_primes_and_fibonacci_compute():
    assert workloads.sum_primes(30) == 2 + 3 + 5 + 7 + 11 + 13 + 17 + 19 + 23 + 29
    assert workloads.sum_primes(100_000) == 454396537
    workloads.fibonacci(100)


def test_lorem_file_is_about_a_megabyte_and_the_same_every_time(tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    workloads.write_lorem_file(first)
    workloads.write_lorem_file(second)
    assert first.read_bytes() == second.read_bytes()
    assert workloads.LOREM_BYTES <= first.stat().st_size < workloads.LOREM_BYTES + 200
    lines = first.read_text().splitlines()
    assert all(line[0].isupper() and line.endswith(".") for line in lines)


def test_file_io_reads_the_file(tmp_path):
    path = tmp_path / "lorem.txt"
    workloads.write_lorem_file(path, size=10_000)
    workloads.file_io(str(path), seeks=100)


def test_page_server_serves_the_page_and_stops():
    with serving() as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == PAGE
        workloads.url_get(url, fetches=3)
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)


def test_queue_push_puts_every_item():
    channel = queue.SimpleQueue()
    workloads.queue_push(channel, items=5)
    assert [channel.get_nowait() for _ in range(5)] == [0, 1, 2, 3, 4]


def test_titles_name_the_sizes():
    assert WORKLOADS["fibonacci"].describe("full") == "50,000 Fibonacci numbers"
    assert WORKLOADS["primes"].describe("full") == "sum of primes below 100,000"
    assert WORKLOADS["queue"].describe("full") == "push 10,000 items through a queue"


# --- runner --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(WORKLOADS))
@pytest.mark.parametrize("mode", ["serial", "threads", "multiprocessing"])
def test_run_once_runs_every_workload_in_every_mode(name, mode):
    workload = WORKLOADS[name]
    resource = workload.resource() if workload.resource else None
    extra = resource.__enter__() if resource else {}
    try:
        seconds = runner.run_once(workload, mode, 2, dict(TINY[name], **extra))
    finally:
        if resource:
            resource.__exit__(None, None, None)
    assert seconds > 0


def test_shmproc_mode_runs_with_shmproc_contexts(shmproc_contexts):
    assert runner.check_available(WORKLOADS["fibonacci"], "shmproc") is None
    assert runner.run_once(WORKLOADS["fibonacci"], "shmproc", 2, TINY["fibonacci"]) > 0


def test_shmproc_mode_is_skipped_with_a_reason_when_shmproc_lacks_it(monkeypatch):
    monkeypatch.delattr(shmproc, "get_context", raising=False)
    assert "get_context" in runner.check_available(WORKLOADS["empty"], "shmproc")
    assert runner.check_available(WORKLOADS["empty"], "multiprocessing") is None


def test_queue_rows_never_credit_shmproc_with_multiprocessing_queue(monkeypatch):
    monkeypatch.setattr(shmproc, "get_context", multiprocessing.get_context, raising=False)
    assert "Queue" in runner.check_available(WORKLOADS["queue"], "shmproc")


def fail(**kwargs):
    raise ValueError("this worker fails")


@pytest.mark.parametrize("mode", ["serial", "threads", "multiprocessing"])
def test_a_failing_worker_fails_the_measurement(mode):
    failing = Workload("failing", "failing", "nothing", fail, full={}, short={})
    with pytest.raises((RuntimeError, ValueError)):
        runner.run_once(failing, mode, 2, {})


def test_measure_table_interleaves_every_mode_and_reports_skips(monkeypatch):
    monkeypatch.delattr(shmproc, "get_context", raising=False)
    seen = []
    samples, skipped = runner.measure_table("empty", [1, 2], repeat=2, on_sample=seen.append)
    assert set(skipped) == {"shmproc"}
    assert samples[2]["shmproc"] is None
    assert all(len(samples[workers][mode]) == 2 for workers in (1, 2)
               for mode in ("serial", "threads", "multiprocessing"))
    assert len(seen) == 2 * 2 * 3


# --- timing, report, progress ---------------------------------------------------------------------

def test_interleaved_rotates_the_order_every_round():
    order = []
    samples = timing.interleaved({name: (lambda name=name: order.append(name) or 1.0) for name in "abc"}, 3)
    assert order == list("abc" "bca" "cab")
    assert samples == {name: [1.0, 1.0, 1.0] for name in "abc"}


def test_formatting():
    assert timing.format_seconds(2.5) == "2.5 s"
    assert timing.format_seconds(0.0125) == "12.5 ms"
    assert timing.format_seconds(3e-6) == "3 µs"
    assert timing.format_seconds(2.4e-8) == "24 ns"
    assert timing.format_seconds(None) == "-"
    assert timing.format_ratio(1.0, 2.0) == "0.50"
    assert timing.format_ratio(None, 2.0) == "-"
    table = timing.format_table(["a", "bb"], [["xyz", "1"], ["q", "22"]]).splitlines()
    assert table == ["a    bb", "---  --", "xyz   1", "q    22"]


def samples_with(mp, shm):
    return {1: {"serial": [1.0], "threads": [1.0], "multiprocessing": [mp], "shmproc": [shm]}}


def test_summary_says_which_rows_shmproc_wins_and_loses():
    results = {"fibonacci": (samples_with(1.0, 0.5), {}), "primes": (samples_with(1.0, 2.0), {}),
               "empty": (samples_with(1.0, 1.01), {})}
    line = report.summary(results)
    assert line.startswith("summary: shmproc faster than multiprocessing in 1 of 3 rows")
    assert "wins: fibonacci x1 (0.50)" in line
    assert "loses: primes x1 (2.00)" in line
    assert "empty x1 (1.01)" in line.split("within")[1]


def test_summary_without_shmproc_figures_says_so():
    results = {"empty": ({1: {"multiprocessing": [1.0], "shmproc": None}}, {"shmproc": "missing"})}
    assert "no row" in report.summary(results)


def test_workload_table_has_the_columns_and_the_skip_reason():
    text = report.format_workload("primes", {1: {"serial": [0.1], "threads": [0.1], "multiprocessing": [0.2],
                                                 "shmproc": None}}, {"shmproc": "not here"}, "full")
    assert "serial" in text and "threads" in text and "multiprocessing" in text and "shmproc/mp" in text
    assert "shmproc: skipped, not here" in text


def test_line_bar_draws_on_its_stream():
    stream = io.StringIO()
    bar = progress.LineBar(4, stream=stream)
    for _ in range(4):
        bar.update("step")
    bar.close()
    assert "[" + "#" * progress.LineBar.width + "]    4/4" in stream.getvalue()
    assert stream.getvalue().endswith("\n")


def test_progress_bar_falls_back_to_the_line_bar_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)          # makes `from tqdm import tqdm` fail
    assert isinstance(progress.progress_bar(3), progress.LineBar)
    assert isinstance(progress.progress_bar(3, enabled=False), progress.NoBar)


def test_progress_bar_uses_tqdm_when_installed(capsys):
    pytest.importorskip("tqdm")
    bar = progress.progress_bar(2)
    assert isinstance(bar, progress.TqdmBar)
    bar.update("one")
    bar.update("two")
    bar.close()
    assert "2/2" in capsys.readouterr().err


# --- the command line -----------------------------------------------------------------------------

def test_bench_command_prints_the_table_the_summary_and_saves_json(tmp_path, capsys, shmproc_contexts):
    path = tmp_path / "results.json"
    assert command.main(["bench", "--workloads", "empty,fibonacci", "--workers", "1,2", "--repeat", "1",
                         "--no-progress", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    header = r"^workers +serial +threads +multiprocessing +shmproc +shmproc/mp$"
    assert len(re.findall(header, out, re.MULTILINE)) == 2
    assert "50,000 Fibonacci numbers" in out
    assert "summary: shmproc faster than multiprocessing in" in out
    document = json.loads(path.read_text())
    assert document["settings"]["workers"] == [1, 2]
    rows = document["workloads"]["fibonacci"]["rows"]
    assert {(row["workers"], row["mode"]) for row in rows} == {
        (workers, mode) for workers in (1, 2) for mode in runner.MODES}


@pytest.mark.parametrize("arguments", [["--workers", "0"], ["--workers", "a,b"], ["--workloads", "nope"]])
def test_bench_command_rejects_bad_options(arguments, capsys):
    with pytest.raises(SystemExit):
        command.main(["bench", *arguments])
    assert "error" in capsys.readouterr().err


def test_python_dash_m_shmproc_bench_runs():
    finished = subprocess.run([sys.executable, "-m", "shmproc", "bench", "--workloads", "empty",
                               "--workers", "1", "--repeat", "1"],
                              capture_output=True, text=True, timeout=60, cwd=REPOSITORY)
    assert finished.returncode == 0, finished.stderr
    assert "empty function" in finished.stdout
    assert "4/4" in finished.stderr         # the progress bar: 1 workload x 1 count x 1 repeat x 4 modes


# --- the asv suite's primitive workloads and compare_synchronize --------------------------------

def asv_benchmarks(module):
    """asv_bench/benchmarks/<module>.py, the one home of the lock, Value and queue workloads."""
    sys.path.insert(0, os.path.join(REPOSITORY, "asv_bench"))
    try:
        return importlib.import_module(f"benchmarks.{module}")
    finally:
        sys.path.pop(0)


@pytest.mark.parametrize("library", ["shmproc", "multiprocessing"])
@pytest.mark.parametrize("layout", ["apart", "together", None])
def test_cross_process_primitive_measurements_run(library, layout):
    synchronize = asv_benchmarks("synchronize")
    library = shmproc if library == "shmproc" else synchronize.FORK
    assert synchronize.barrier_round(library, 2, 20, layout) > 0
    assert synchronize.barrier_round(library, 3, 20, layout) > 0
    assert synchronize.condition_ping_pong(library, 20, layout) > 0
    assert synchronize.contended_lock(library, 2, 200, layout) > 0


def test_compare_synchronize_prints_its_table(capsys):
    spec = importlib.util.spec_from_file_location(
        "compare_synchronize", os.path.join(REPOSITORY, "asv_bench", "compare_synchronize.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--repeat", "1", "--only", "lock"])
    out = capsys.readouterr().out
    assert "Lock acquire(); release()" in out and "Lock contended, 2 processes on 2 cores" in out
    assert "Barrier" not in out
