"""Module-level task functions for the pool and executor tests (spawned workers import them)."""
import os
import signal
import time


def square(x):
    return x * x


def add(x, y):
    return x + y


def identity(x):
    return x


def pid_of_worker(_):
    return os.getpid()


class Count(int):
    """An int that is not one (a result that must be pickled, not sent as a plain value)."""


def count_or_int(x):
    return Count(x) if x == 700 else x


def raise_value_error(x):
    raise ValueError(f"bad {x}")


def kill_self_at(x, victim, how="sigkill"):
    """Return x, but die the way asked when x is victim."""
    if x == victim:
        import faulthandler
        faulthandler.disable()          # pytest's handler would print the intended crash
        if how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif how == "abort":
            os.abort()
        else:
            os._exit(7)
    return x


def kill_self_once(x, victim, flag_path):
    """Die (SIGKILL) the first time victim is run: the flag file marks that it happened."""
    if x == victim and not os.path.exists(flag_path):
        with open(flag_path, "w"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def sleep_if(x, sleeper, seconds):
    if x == sleeper:
        time.sleep(seconds)
    return x


def block_in_c(x):
    """Stuck with signals blocked (a C extension that never returns, in effect)."""
    if x == 1:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGUSR2})
    return x


def raise_base_exception(_):
    raise SystemExit(3)


class Unpicklable:
    def __reduce__(self):
        raise TypeError("this object cannot be pickled")


def unpicklable_at_3(x):
    return Unpicklable() if x == 3 else x


def return_unpicklable(_):
    return Unpicklable()


class FailsToUnpickle:
    def __reduce__(self):
        return (_refuse, ())


def _refuse():
    raise RuntimeError("cannot be rebuilt here")


def return_fails_to_unpickle(_):
    return FailsToUnpickle()


class ExitsAtPickle:
    def __reduce__(self):
        raise SystemExit(4)


def return_exits_at_pickle(_):
    return ExitsAtPickle()


class ExitsAtUnpickle:
    def __reduce__(self):
        return (_exit_here, ())


def _exit_here():
    raise SystemExit(5)


def return_exits_at_unpickle(_):
    return ExitsAtUnpickle()


def fresh_shared_array(x):
    import shmproc
    array = shmproc.zeros(1 << 20)
    array[0] = x
    return array


def sum_shared(array, i):
    return float(array[i])


def initializer_sets(value):
    global INITIALIZED
    INITIALIZED = value


def read_initialized(_):
    return INITIALIZED


class ErrorWithUnpicklableField(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.callback = lambda: None        # lambdas do not pickle


def raise_unpicklable_error(_):
    raise ErrorWithUnpicklableField("cannot travel")


class Token:
    """A plain object that pickles and takes weak references."""
