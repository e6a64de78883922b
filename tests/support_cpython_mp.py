"""CPython's own multiprocessing test-suite (test._test_multiprocessing), pointed at shmproc.

The installed test module is run here, not copied: its code object is executed in this module's
namespace while ``sys.modules`` maps ``multiprocessing`` (and the submodules shmproc provides) to
shmproc. Every name the suite binds at import -- ``multiprocessing``, ``wait``, the mixins'
``Process``, ``Queue``, ``Pipe``, ``connection`` ..., the base class of its Process subclass -- then
refers to shmproc, and the suite's test classes are built from this namespace by its own
``install_tests_in_module_dict``. Submodules shmproc does not have (``process``, ``util``, ``heap``,
``dummy``, ``shared_memory``, ``reduction``, ...) stay the standard library's.

Spawned children import the test module by name, which imports this one again and so re-runs the
suite's code under the same mapping: the classes a child unpickles are shmproc's there too.
"""
import importlib
import importlib.util
import multiprocessing
import sys
import types

import shmproc

# The suite's imports, done first with the real multiprocessing, so nothing it pulls in on the way
# keeps the mapping below.
for _name in ("multiprocessing.connection", "multiprocessing.dummy", "multiprocessing.heap",
              "multiprocessing.managers", "multiprocessing.pool", "multiprocessing.queues",
              "multiprocessing.util", "multiprocessing.reduction", "multiprocessing.sharedctypes",
              "multiprocessing.shared_memory", "multiprocessing.resource_tracker",
              "multiprocessing.synchronize", "test.support", "test.support.script_helper",
              "test.support.hashlib_helper", "test.support.import_helper",
              "test.support.os_helper", "test.support.socket_helper",
              "test.support.threading_helper", "test.support.warnings_helper", "_multiprocessing"):
    importlib.import_module(_name)

# multiprocessing's submodules that shmproc replaces; the others stay the standard library's.
SHMPROC_SUBMODULES = ("connection", "queues", "sharedctypes", "pool", "managers",
                      "reduction")


def _shmproc_submodule(name):
    try:
        return importlib.import_module("shmproc." + name)
    except ImportError:
        return None


class _Overlay(types.ModuleType):
    """``multiprocessing`` as the suite sees it: shmproc's names, else the standard library's."""

    stdlib = multiprocessing     # the suite rebinds the global name ``multiprocessing`` to the overlay

    def __getattr__(self, name):
        return getattr(self.stdlib, name)


def _overlay():
    module = _Overlay("multiprocessing")
    for name in dir(shmproc):
        if not name.startswith("_"):
            setattr(module, name, getattr(shmproc, name))
    mapping = {"multiprocessing": module}
    for name in SHMPROC_SUBMODULES:
        sub = _shmproc_submodule(name)
        if sub is not None:
            setattr(module, name, sub)
            mapping["multiprocessing." + name] = sub
        else:
            setattr(module, name, importlib.import_module("multiprocessing." + name))
    for name in ("process", "util", "heap", "dummy", "shared_memory", "resource_tracker"):
        setattr(module, name, importlib.import_module("multiprocessing." + name))
    return mapping


def _run_suite_here():
    spec = importlib.util.find_spec("test._test_multiprocessing")
    code = spec.loader.get_code(spec.name)
    mapping = _overlay()
    saved = {name: sys.modules.get(name) for name in mapping}
    sys.modules.update(mapping)
    globals()["__file__"] = spec.origin       # the suite finds its helper scripts next to itself
    try:
        exec(code, globals())  # noqa: S102 - the installed suite, run here (see above)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


_run_suite_here()
