# The Python modules the core uses, imported once, each under one name (included by _core.pyx
# before every part). A part that needs a module uses the name given here; none imports its own.
# Left out on purpose: numpy (optional: value.pyx imports it where a structure needs it) and
# ctypes (value.pyx imports it on first use, to keep `import shmproc` fast).

import copyreg as _copyreg
import errno as _errno
import io as _io
import os as _os
import pickle as _pickle
import queue as _queue
import socket as _socket
import sys as _sys
import threading as _threading
import time as _time
import weakref as _weakref

import multiprocessing.context as _mp_context
import multiprocessing.process as _mp_process
import multiprocessing.reduction as _mp_reduction
import multiprocessing.util as _mp_util
