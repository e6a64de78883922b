"""Standard-library code that takes a multiprocessing context runs on a shmproc one."""
import concurrent.futures

import pytest

import shmproc


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool_executor_on_a_shmproc_context(method):
    # The executor builds multiprocessing's own Queue from our Lock and BoundedSemaphore, and reads
    # our SimpleQueue through its _reader: both must answer as multiprocessing's do.
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=shmproc.get_context(method)) as ex:
        assert list(ex.map(abs, [-1, -2, 3], timeout=30)) == [1, 2, 3]
        assert ex.submit(pow, 2, 10).result(timeout=30) == 1024


def test_every_private_name_shmproc_uses_exists_here():
    # shmproc/_compat.py is the one place that touches the standard library's private names; a new
    # CPython that renames one fails here, not somewhere in a child process.
    import importlib

    from shmproc import _compat
    for module_name, names in _compat.PRIVATE_NAMES.items():
        module = importlib.import_module(module_name)
        for dotted in names:
            owner = module
            for part in dotted.split("."):
                assert hasattr(owner, part), f"{module_name}.{dotted} is gone"
                owner = getattr(owner, part)


def test_nothing_else_reads_a_private_name_of_the_standard_library():
    import pathlib
    import re

    from shmproc import _compat
    package = pathlib.Path(_compat.__file__).parent
    private = "|".join(re.escape(name.split(".")[0])
                       for names in _compat.PRIVATE_NAMES.values() for name in names)
    pattern = re.compile(rf"\b(?:_mp_\w+|util|threading|forkserver|process)\.(?:{private})\b")
    offenders = [f"{path.relative_to(package)}:{number}"
                 for path in sorted(package.rglob("*"))
                 if path.suffix in (".py", ".pyx", ".pxd", ".pxi") and path.name != "_compat.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, offenders
