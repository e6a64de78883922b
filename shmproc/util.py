"""Logging and process-lifetime helpers: multiprocessing.util's, re-exported.

shmproc's processes are multiprocessing's processes as far as multiprocessing.util can tell, so its
finalizers, after-fork hooks and at-exit handling serve both. ``get_logger()`` is the
"multiprocessing" logger on purpose: the start machinery shmproc reuses logs there, and one
``log_to_stderr()`` shows both libraries' messages.
"""
from multiprocessing.util import (  # noqa: F401 - re-exported
    DEBUG,
    INFO,
    NOTSET,
    SUBDEBUG,
    SUBWARNING,
    Finalize,
    ForkAwareLocal,
    ForkAwareThreadLock,
    close_all_fds_except,
    debug,
    get_logger,
    get_temp_dir,
    info,
    is_exiting,
    log_to_stderr,
    register_after_fork,
    sub_debug,
    sub_warning,
)

__all__ = [
    "SUBDEBUG", "SUBWARNING", "Finalize", "ForkAwareLocal", "ForkAwareThreadLock",
    "close_all_fds_except", "debug", "get_logger", "get_temp_dir", "info", "is_exiting",
    "log_to_stderr", "register_after_fork", "sub_debug", "sub_warning",
]
