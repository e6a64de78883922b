"""One quick asv run of the suite per test session, shared by test_asv and test_dashboard.

asv runs in the current interpreter (--python=same, so nothing is built) with its own copy of the
configuration: results, HTML and the machine file all go to a temporary folder, so a test run never
touches asv_bench/results or ~/.asv-machine.json.
"""
import atexit
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASV_BENCH = os.path.join(REPOSITORY, "asv_bench")
MACHINE = "shmproc-test"
RUN_TIMEOUT = 240


def asv_installed():
    return importlib.util.find_spec("asv") is not None


def asv(arguments, folder, timeout=RUN_TIMEOUT):
    """Run `python -m asv` with HOME in `folder`; return the completed process (output as text)."""
    environment = dict(os.environ, HOME=folder)
    return subprocess.run([sys.executable, "-m", "asv", *arguments, "--config", config_path(folder)],
                          cwd=ASV_BENCH, env=environment, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def config_path(folder):
    return os.path.join(folder, "asv.conf.json")


def write_config(folder):
    from asv.util import load_json
    config = load_json(os.path.join(ASV_BENCH, "asv.conf.json"), js_comments=True)
    config.update(
        repo=REPOSITORY,
        branches=[current_branch()],
        benchmark_dir=os.path.join(ASV_BENCH, "benchmarks"),
        env_dir=os.path.join(folder, "env"),
        results_dir=os.path.join(folder, "results"),
        html_dir=os.path.join(folder, "html"),
    )
    with open(config_path(folder), "w") as out:
        json.dump(config, out, indent=2)


def current_branch():
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    return branch if branch != "HEAD" else "main"


def git(*arguments):
    return subprocess.run(["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


class AsvRun:
    def __init__(self, folder, check, machine, run):
        self.folder, self.check, self.machine, self.run = folder, check, machine, run

    @property
    def html_dir(self):
        return os.path.join(self.folder, "html")

    def results(self):
        """{benchmark name: result entry} from the one results file of this run."""
        machine_dir = os.path.join(self.folder, "results", MACHINE)
        files = [name for name in os.listdir(machine_dir) if name != "machine.json"]
        assert len(files) == 1, files
        with open(os.path.join(machine_dir, files[0])) as source:
            document = json.load(source)
        columns = document["result_columns"]
        return {name: dict(zip(columns, entry)) for name, entry in document["results"].items()}


@functools.lru_cache(maxsize=None)
def quick_run():
    """asv check, then a single quick pass over the whole suite recorded against HEAD."""
    folder = tempfile.mkdtemp(prefix="shmproc-asv-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    write_config(folder)
    check = asv(["check", "--python=same"], folder)
    machine = asv(["machine", "--yes", "--machine", MACHINE], folder)
    run = asv(["run", "--python=same", "--quick", "--show-stderr", "--launch-method", "forkserver",
               "--machine", MACHINE, "--set-commit-hash", git("rev-parse", "HEAD")], folder)
    return AsvRun(folder, check, machine, run)
