"""Shared ndarrays on their way to Dask workers: by handle where the worker can attach this
process's shared memory, by value (bit-identical) elsewhere; decided per worker.

How a worker's fitness is known: once per worker, this process asks it (``client.run``) to attach a
small probe array of ours and read back its random bytes. A worker on another host fails, and so
does one on this host that cannot open /proc/<our pid>/fd (another mount or pid namespace, another
user): the answer is the real thing, not a guess from an IP address.

How the decision is applied: when every worker attaches, the handle goes inside the batch (the
common case, one host: nothing but the handle moves). Otherwise the pool places each shared array
argument on every worker with a direct ``scatter`` to that worker alone. Dask serialises the
wrapper (SharedArgument) on the connection to that worker and tells the serializer the recipient's
address; the serializer looks the address up in the probe's answers. Data a worker forwards to
another (Dask moving keys) goes by value: the forwarder cannot know the recipient's namespace.

Every decision is logged at DEBUG on the "shmproc.distributed" logger.
"""
import logging
import os
import pickle

import numpy as np
from dask.sizeof import sizeof
from distributed.protocol import dask_deserialize, dask_serialize

from shmproc import ndarray as _ndarray

__all__ = ["SharedArgument", "all_attach", "attach_verdicts", "probe_workers"]

logger = logging.getLogger("shmproc.distributed")

# worker address -> (attaches: bool, why: str), as the probe found it from this process.
attach_verdicts: dict = {}

_HANDLE_BYTES = 256          # what a handle costs in a worker's memory, for Dask's bookkeeping


class SharedArgument:
    """A shared ndarray (or, after the trip, the worker's view of it) and how it travelled."""

    __slots__ = ("array", "by_reference")

    def __init__(self, array, by_reference=False):
        self.array = array
        self.by_reference = by_reference

    def __repr__(self):
        how = "by reference" if self.by_reference else "by value"
        return f"<SharedArgument {self.array.shape} {self.array.dtype} {how}>"


@sizeof.register(SharedArgument)
def _sizeof(argument):
    return _HANDLE_BYTES if argument.by_reference else argument.array.nbytes


def _describe(array):
    return f"{array.dtype}{list(array.shape)} ({array.nbytes} bytes)"


@dask_serialize.register(SharedArgument)
def _serialize(argument, context=None):
    recipient = ((context or {}).get("recipient") or {}).get("address")
    attaches, why = attach_verdicts.get(recipient, (False, "not probed from this process"))
    array = argument.array
    if attaches and _ndarray._block_of(array) is not None:
        logger.debug("shared array %s to %s: by reference (%s)", _describe(array), recipient, why)
        return {"by": "reference"}, [pickle.dumps(array, protocol=5)]
    logger.debug("shared array %s to %s: by value (%s)", _describe(array), recipient, why)
    buffers: list = []
    head = pickle.dumps(array.view(np.ndarray), protocol=5, buffer_callback=buffers.append)
    return {"by": "value"}, [head] + [buffer.raw() for buffer in buffers]


@dask_deserialize.register(SharedArgument)
def _deserialize(header, frames):
    if header["by"] == "reference":
        return SharedArgument(pickle.loads(frames[0]), by_reference=True)
    array = pickle.loads(frames[0], buffers=frames[1:])
    if not array.flags.writeable:       # a frame the comm gave read-only: the task may write
        array = array.copy()
    return SharedArgument(array)


def _probe(pickled, expected):
    """Run on a worker: attach the probe array and compare its bytes."""
    try:
        array = pickle.loads(pickled)
        if bytes(array) != expected:
            return False, "attached a segment, but not the one sent"
        return True, f"attached the probe from worker pid {os.getpid()}"
    except Exception as exc:
        return False, f"cannot attach: {type(exc).__name__}: {exc}"


def all_attach(workers, array):
    """Whether every worker attached the probe (then a handle can go inline), logged."""
    refused = [w for w in workers if not attach_verdicts.get(w, (False,))[0]]
    if refused:
        return False
    logger.debug("shared array %s to %s: by reference, inline (every worker attached the probe)",
                 _describe(array), ", ".join(workers))
    return True


def probe_workers(client, workers):
    """Fill attach_verdicts for the workers not probed yet."""
    unknown = [w for w in workers if w not in attach_verdicts]
    if not unknown:
        return
    probe = _ndarray.empty(32, np.uint8)
    probe[:] = np.frombuffer(os.urandom(32), np.uint8)
    answers = client.run(_probe, pickle.dumps(probe, protocol=5), bytes(probe), workers=unknown,
                         on_error="return")
    for worker in unknown:
        answer = answers.get(worker, (False, "did not answer the probe"))
        if isinstance(answer, BaseException):
            answer = (False, f"probe failed: {answer!r}")
        attach_verdicts[worker] = answer
        logger.debug("worker %s %s this process's shared memory: %s", worker,
                     "attaches" if answer[0] else "cannot attach", answer[1])
