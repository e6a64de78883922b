"""The standard library's private names that shmproc reads or writes, all of them, in one place.

shmproc's processes must look like multiprocessing's own to the rest of the standard library (its
process table, finalizers, after-fork hooks, fork server, default context), and part of that is only
reachable through private names. Every such use goes through this module, so that a new CPython
release is checked in one file: each group below says in which CPython versions' source its names
were read, ``PRIVATE_NAMES`` lists them, and ``tests/test_compat.py`` checks that each exists in the
running interpreter.

"Checked" means read in the standard library of CPython 3.10.13, 3.11.7, 3.12.1 and 3.13.0 (the
versions shmproc supports that this machine has). 3.14 was not at hand: its release is to be checked
here first.

The functions are small on purpose: some run in a forked child, where every object touched costs a
copied page (docs/process.md), so they touch no more than the code they stand for.
"""
import multiprocessing.context
import multiprocessing.process
import multiprocessing.util
import threading as _threading
from typing import Any

# Typed as Any: the type stubs of the standard library declare none of these private names.
_mp_context: Any = multiprocessing.context
_mp_process: Any = multiprocessing.process
_mp_util: Any = multiprocessing.util
threading: Any = _threading

__all__ = [
    "PRIVATE_NAMES",
    "ParentProcess",
    "add_forkserver_preload",
    "children",
    "chosen_context",
    "choose_context",
    "flush_std_streams",
    "install_process_state",
    "join_threads_at_exit",
    "logging_enabled",
    "next_child_number",
    "process_is_exiting",
    "reap_finished_children",
    "run_after_fork_hooks",
    "run_exit_functions",
    "set_main_thread_native_id",
    "standard_context",
    "standard_default_start_method",
]

# Every private name used below, by module (dotted for an attribute of an object there).
PRIVATE_NAMES = {
    "multiprocessing.process": ("_current_process", "_parent_process", "_process_counter",
                                "_children", "_cleanup", "_ParentProcess"),
    "multiprocessing.util": ("_logger", "_finalizer_registry", "_afterfork_registry",
                             "_run_after_forkers", "_exit_function", "_flush_std_streams",
                             "_exiting"),
    "threading": ("_HAVE_THREAD_NATIVE_ID", "_main_thread._native_id", "_threading_atexits",
                  "_shutdown") + (("_shutdown_locks",) if hasattr(threading, "_shutdown_locks") else ()),
    "multiprocessing.context": ("_concrete_contexts", "_default_context._default_context",
                                "_default_context._actual_context"),
    "multiprocessing.forkserver": ("_forkserver._preload_modules", "_forkserver._forkserver_pid"),
}

# --- multiprocessing.process: the process table (checked 3.10-3.13) --------------------------------
# _current_process, _parent_process, _process_counter and _children are module globals that
# BaseProcess._bootstrap replaces in a new child; _cleanup() reaps ended children; _ParentProcess is
# the parent's process object in a child.

ParentProcess = _mp_process._ParentProcess


def children():
    """The set of this process's started, not yet joined children (add/discard in place)."""
    return _mp_process._children


def next_child_number():
    return next(_mp_process._process_counter)


def reap_finished_children():
    if _mp_process._children:
        _mp_process._cleanup()


def install_process_state(process, parent, process_counter, children_set):
    """Make ``process`` this process's current process, as multiprocessing's child bootstrap does;
    returns what was there (current process, counter, children), for the caller to keep alive."""
    state = _mp_process
    previous = (state._current_process, state._process_counter, state._children)
    state._process_counter = process_counter
    state._children = children_set
    state._current_process = process
    state._parent_process = parent
    return previous


# --- multiprocessing.util: finalizers, after-fork hooks, logging (checked 3.10-3.13) -------------
# _logger (None until get_logger()), _finalizer_registry (dict), _afterfork_registry (a
# WeakValueDictionary: .data is its dict), _run_after_forkers(), _exit_function(),
# _flush_std_streams().

flush_std_streams = _mp_util._flush_std_streams


def logging_enabled():
    return _mp_util._logger is not None


def run_exit_functions():
    """What multiprocessing's child runs after run(): finalizers, joining its own children, logging;
    skipped when there is none of them."""
    if _mp_util._finalizer_registry or _mp_process._children or _mp_util._logger:
        _mp_util._exit_function()


def process_is_exiting():
    """multiprocessing's exit function has begun (it terminates the daemonic children next)."""
    return _mp_util._exiting


def run_after_fork_hooks():
    """multiprocessing's after-fork step in a child (inherited finalizers dropped, registered hooks
    run), skipping the registries that are empty."""
    if _mp_util._finalizer_registry:
        _mp_util._finalizer_registry.clear()
    if _mp_util._afterfork_registry.data:
        _mp_util._run_after_forkers()


# --- threading (checked 3.10-3.13) ---------------------------------------------------------------
# _HAVE_THREAD_NATIVE_ID, _main_thread._native_id; _threading_atexits and _shutdown(), which
# multiprocessing's child calls before it exits. _shutdown_locks (the non-daemon threads still to
# join) exists up to 3.12 only: 3.13 joins threads through _thread._shutdown() and has no cheap way to
# tell that there are none, so there the child always calls _shutdown(), as multiprocessing does.

def set_main_thread_native_id():
    """After fork the main thread object still carries the parent's native thread id."""
    if threading._HAVE_THREAD_NATIVE_ID:
        threading._main_thread._native_id = threading.get_native_id()


if hasattr(threading, "_shutdown_locks"):
    def join_threads_at_exit():
        """Run threading's at-exit calls and join non-daemon threads, if there are any."""
        if threading._shutdown_locks or threading._threading_atexits:
            threading._shutdown()
else:
    join_threads_at_exit = threading._shutdown


# --- multiprocessing.context (checked 3.10-3.13) -------------------------------------------------
# _concrete_contexts (name -> context), _default_context (the DefaultContext; its _default_context is
# the platform's default context, its _actual_context the one chosen, None until chosen).

def standard_context(method):
    """The standard library's context for a start method."""
    return _mp_context._concrete_contexts[method]


def standard_default_start_method():
    """The standard library's default start method for this platform and Python version."""
    return _mp_context._default_context._default_context._name


def chosen_context(default_context):
    """The context a DefaultContext has settled on, or None while none is chosen."""
    return default_context._actual_context


def choose_context(default_context, context):
    """Set a DefaultContext's choice without set_start_method()'s once-only check."""
    default_context._actual_context = context


# --- multiprocessing.forkserver (checked 3.10-3.13) ----------------------------------------------
# _forkserver (the one ForkServer), its _preload_modules (a list, read when the server starts) and
# _forkserver_pid (None until started).

def add_forkserver_preload(modules):
    """Ask a fork server not started yet to import ``modules`` too. One already running (started
    by multiprocessing, say) serves as it is."""
    # Imported here: it imports connection, resource_tracker and spawn, which a child started by
    # another method need not load.
    from multiprocessing import forkserver
    server: Any = forkserver._forkserver
    preload = getattr(server, "_preload_modules", None)
    if isinstance(preload, list) and getattr(server, "_forkserver_pid", None) is None:
        for module in modules:
            if module not in preload:
                preload.append(module)
