"""The public surface: every multiprocessing name, with multiprocessing's signatures."""
import inspect
import multiprocessing
import threading

import pytest
from conftest import assert_signature_extends

import shmproc


def test_all_names_exist():
    for name in shmproc.__all__:
        assert hasattr(shmproc, name), name
    assert len(set(shmproc.__all__)) == len(shmproc.__all__)


def test_every_multiprocessing_name_is_provided():
    assert set(multiprocessing.__all__) <= set(shmproc.__all__)


@pytest.mark.parametrize("name", sorted(n for n in multiprocessing.__all__
                                        if callable(getattr(multiprocessing, n))
                                        and not inspect.isclass(getattr(multiprocessing, n))))
def test_signatures_match_multiprocessing(name):
    ours, theirs = getattr(shmproc, name), getattr(multiprocessing, name)
    try:
        expected = inspect.signature(theirs)
    except (TypeError, ValueError):
        pytest.skip(f"multiprocessing.{name} has no introspectable signature")
    assert_signature_extends(inspect.signature(ours), expected)


@pytest.mark.parametrize("factory, module", [
    (lambda: shmproc.Lock(), "shmproc._core"),
    (lambda: shmproc.RLock(), "shmproc._core"),
    (lambda: shmproc.Semaphore(), "shmproc._core"),
    (lambda: shmproc.BoundedSemaphore(), "shmproc._core"),
    (lambda: shmproc.Event(), "shmproc._core"),
    (lambda: shmproc.Condition(), "shmproc._core"),
    (lambda: shmproc.Barrier(2), "shmproc._core"),
    (lambda: shmproc.Value("i"), "shmproc._core"),
    (lambda: shmproc.Array("i", 3), "shmproc._core"),
    (lambda: shmproc.Queue(), "shmproc.queues"),
    (lambda: shmproc.SimpleQueue(), "shmproc.queues"),
    (lambda: shmproc.JoinableQueue(), "shmproc.queues"),
])
def test_factories_build_shmproc_objects(factory, module):
    obj = factory()
    assert type(obj).__module__ == module
    if hasattr(obj, "close"):
        obj.close()


def test_pipe_is_shmproc():
    a, b = shmproc.Pipe()
    assert type(a).__module__ == "shmproc.connection"
    a.close()
    b.close()


def test_process_is_shmproc_and_a_multiprocessing_process():
    assert issubclass(shmproc.Process, multiprocessing.process.BaseProcess)
    # Where multiprocessing keeps its own: with the context it belongs to.
    assert shmproc.Process.__module__ == "shmproc.context"


def test_exceptions_are_the_standard_librarys():
    for name in ("ProcessError", "BufferTooShort", "TimeoutError", "AuthenticationError"):
        assert getattr(shmproc, name) is getattr(multiprocessing, name)
    assert shmproc.BrokenBarrierError is threading.BrokenBarrierError
    assert issubclass(shmproc.OwnerDiedError, RuntimeError)


def test_the_pool_is_shmprocs():
    with shmproc.Pool(1) as pool:
        assert type(pool).__module__ == "shmproc.pool"
        assert pool.apply(abs, (-3,)) == 3


def test_manager_is_shmprocs_and_works():
    with shmproc.Manager() as manager:
        assert type(manager).__module__ == "shmproc.managers"
        shared = manager.list([1, 2])
        assert list(shared) == [1, 2]


def test_modules_define_all():
    import importlib
    for module in ("shmproc.synchronize", "shmproc.sharedctypes", "shmproc.ndarray",
                   "shmproc.queues", "shmproc.connection", "shmproc.context", "shmproc.process",
                   "shmproc._compat", "shmproc.listener", "shmproc.reduction", "shmproc.pool",
                   "shmproc.futures", "shmproc.pool_results", "shmproc.pool_engine", "shmproc.pool_worker",
                   "shmproc.managers"):
        mod = importlib.import_module(module)
        assert mod.__all__, module
        for name in mod.__all__:
            assert hasattr(mod, name), f"{module}.{name}"


def test_import_without_the_compiled_core_fails_clearly(tmp_path):
    """No pure-Python fallback: a package whose extension was never built says so at import."""
    import pathlib
    import shutil
    import subprocess
    import sys
    source = pathlib.Path(shmproc.__file__).parent
    copy = tmp_path / "shmproc"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.so", "__pycache__", "_core.c"))
    # -S: no site packages, so an installed shmproc cannot stand in for the copy.
    out = subprocess.run([sys.executable, "-S", "-c", "import shmproc"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)})
    assert out.returncode != 0
    assert "compiled core (shmproc._core) is missing" in out.stderr
