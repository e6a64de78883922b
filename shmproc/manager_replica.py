"""Managed dicts, lists, namespaces and values replicated through a shared-memory log.

A standard manager keeps the one copy of a shared dict in its server process, and every access is
a socket round trip. Here every process that holds a proxy on the same machine keeps a replica of
the object, and the server keeps one too. Mutations are appended to a log in shared memory under a
shared lock; a process applies the log entries it has not seen before every access, so an access
that finds the log unchanged is a read of one shared counter plus a local method call.

Layout (one ``Log`` per managed object):

* ``end``: a shared 64-bit counter, the log position (bytes ever appended). A record is visible
  once ``end`` covers it: the writer copies the record in first, then stores ``end``.
* ``server_pos``: how far the server's replica has applied the log. A writer never overwrites
  bytes the server has not applied (it asks the server to catch up first), so the server's replica
  is always complete and can hand a snapshot to any process that fell behind.
* a ring of ``capacity`` bytes holding records ``[4-byte length][payload]``; a payload is a
  marshal (builtin types) or pickle of ``(method name, args)``, or the one-byte RESYNC marker.
* the lock: a shmproc Lock, so a writer that dies holding it does not wedge the others (the next
  writer is told, recovers the lock and goes on; a record is committed only by the ``end`` store,
  so a half-written one is never seen).

A reader copies a record out of the ring without the lock, then checks that ``end`` has not moved
more than ``capacity`` past the record's start (else it may have been overwritten, and the reader
resynchronises from the server's snapshot). Mutations replay in the same order everywhere, and the
builtin containers are deterministic, so every replica holds the same state.

Results handed to the caller are private copies (as a manager's are: a pickle round trip) unless
they are immutable builtins.
"""
import marshal
import os
import pickle
import struct
import threading
import weakref

from shmproc import _core

__all__ = ["Log", "Replica", "private_copy"]

DEFAULT_CAPACITY = 1 << 17
_LENGTH = struct.Struct("<I")
_MARSHAL = b"m"
_PICKLE = b"p"
RESYNC = b"r"
_MARSHAL_KIND, _PICKLE_KIND = _MARSHAL[0], _PICKLE[0]

_IMMUTABLE = frozenset({int, float, str, bytes, bool, type(None), complex, range})


def private_copy(value):
    """What a manager call would return: the caller's own copy of value."""
    cls = type(value)
    if cls in _IMMUTABLE:
        return value
    if cls is tuple and all(type(item) in _IMMUTABLE for item in value):
        return value
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


_CONTAINERS = frozenset({tuple, list, dict, set, frozenset})
_MARSHAL_SCALARS = frozenset({int, float, str, bytes, bool, type(None), complex})


def _marshal_safe(value, depth=0):
    """Whether marshal round-trips value exactly: builtin scalars in builtin containers only (marshal
    would turn a bytearray, an array or an ndarray into bytes, and an int subclass into an int)."""
    cls = type(value)
    if cls in _MARSHAL_SCALARS:
        return True
    if cls not in _CONTAINERS or depth > 20:
        return False
    if cls is dict:
        return all(_marshal_safe(k, depth + 1) and _marshal_safe(v, depth + 1)
                   for k, v in value.items())
    return all(_marshal_safe(item, depth + 1) for item in value)


def _encode(op):
    if all(_marshal_safe(part) for part in op[1]) and (len(op) == 2 or _marshal_safe(op[2])):
        try:
            return _MARSHAL + marshal.dumps(op)
        except (ValueError, RecursionError):
            pass
    return _PICKLE + pickle.dumps(op, pickle.HIGHEST_PROTOCOL)


def _decode(payload):
    kind = payload[:1]
    if kind == _MARSHAL:
        return marshal.loads(payload[1:])
    if kind == _PICKLE:
        return pickle.loads(payload[1:])
    return None


class Log:
    """The shared part: counters, ring and lock. Pickles as handles to them, so it reaches any
    process on this machine (while the server, which created it, is alive)."""

    def __init__(self, capacity=DEFAULT_CAPACITY, doorbell=None, _parts=None):
        if _parts is None:
            _parts = (_core.allocate(capacity), shmproc_value(), shmproc_value(),
                      _core.Lock(), capacity, doorbell)
        self._block, self.end, self.server_pos, self.lock, self.capacity, self.doorbell = _parts
        self.ring = memoryview(self._block)[:self.capacity]
        self._quarter = self.capacity // 4

    def __reduce__(self):
        return (Log, (self.capacity, None, (self._block, self.end, self.server_pos, self.lock,
                                            self.capacity, self.doorbell)))

    def grew(self, old_end, new_end, server_pos):
        """After an append: wake the server's follower when the log passes a quarter of the ring
        beyond what the server has applied, so that it catches up before writers must wait."""
        threshold = server_pos + self._quarter
        if old_end < threshold <= new_end and self.doorbell is not None:
            self.doorbell.release()

    def read(self, position, size):
        start = position % self.capacity
        stop = start + size
        if stop <= self.capacity:
            return bytes(self.ring[start:stop])
        return bytes(self.ring[start:]) + bytes(self.ring[:stop - self.capacity])

    def write(self, position, data):
        start = position % self.capacity
        stop = start + len(data)
        if stop <= self.capacity:
            self.ring[start:stop] = data
        else:
            split = self.capacity - start
            self.ring[start:] = data[:split]
            self.ring[:stop - self.capacity] = data[split:]

    def acquire(self):
        while True:
            try:
                self.lock.acquire()
                return
            except _core.OwnerDiedError:
                # The holder died; the lock is free again and the log is intact (its last record
                # counts only if the dead writer stored `end`). Take it.
                continue


def shmproc_value():
    from shmproc.sharedctypes import Value
    return Value("Q", 0)


class _Behind(Exception):
    """This replica missed records (overwritten) or met a RESYNC: it needs a snapshot."""


_replicas = weakref.WeakSet()


def _after_fork_in_child():
    for replica in list(_replicas):
        replica.mutex = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Replica:
    """One process's copy of a managed object, kept current from the log.

    ``snapshot`` is a callable returning ``(position, state)`` from the server; ``server_catch_up``
    asks the server to apply the log (used by a writer holding the lock when the ring is full, and
    after a record whose pickle may name things only its writer's process holds).
    """

    def __init__(self, log, position, state, snapshot, server_catch_up, is_server=False):
        self.log = log
        self.position = position
        self.state = state
        self._snapshot = snapshot
        self._server_catch_up = server_catch_up
        self._is_server = is_server
        self.mutex = threading.Lock()
        _replicas.add(self)

    # --- applying the log ---------------------------------------------------------------------

    def _apply_new(self):
        """Apply every committed record past self.position (mutex held). The new bytes are copied
        out in one piece, then checked not to have been overwritten meanwhile, then parsed."""
        log = self.log
        end = log.end.load()
        position = self.position
        if end == position:
            return
        capacity = log.capacity
        if end - position > capacity:
            raise _Behind
        data = log.read(position, end - position)
        if log.end.load() - position > capacity:
            raise _Behind               # overwritten while we copied it
        view = memoryview(data)
        state = self.state
        unpack = _LENGTH.unpack_from
        total = end - position
        offset = 0
        try:
            while offset < total:
                size, = unpack(data, offset)
                start = offset + 5
                offset += 4 + size
                kind = data[start - 1]
                if kind == _MARSHAL_KIND:
                    op = marshal.loads(view[start:offset])
                elif kind == _PICKLE_KIND:
                    op = pickle.loads(view[start:offset])
                elif self._is_server:
                    continue            # RESYNC: the server's replica is the reference
                else:
                    raise _Behind
                try:
                    method = getattr(state, op[0])
                    if len(op) == 2:
                        method(*op[1])
                    else:
                        method(*op[1], **op[2])
                except Exception:
                    pass    # it failed for its writer too, identically: the replicas still agree
        finally:
            self.position = position + offset
            if self._is_server:
                log.server_pos.store(self.position)

    def refresh(self):
        """Bring this replica up to date (mutex held)."""
        try:
            self._apply_new()
        except _Behind:
            if self._is_server:
                raise RuntimeError("the manager's replica fell behind its log") from None
            self.position, self.state = self._snapshot(False)

    # --- the operations -----------------------------------------------------------------------
    # Lock order: a client takes its mutex, then the log's lock; the server takes the log's lock,
    # then its mutex, because it serves catch-up requests from a client holding the log's lock.

    def read(self, name, args=()):
        with self.mutex:
            self.refresh()
            result = getattr(self.state, name)(*args)
        return private_copy(result)

    def read_with(self, function):
        """function(state) on a current state, its result returned as it is (the caller copies)."""
        with self.mutex:
            self.refresh()
            return function(self.state)

    def write(self, name, args=(), kwds=None):
        op = (name, args, kwds) if kwds else (name, args)
        for arg in args:
            if type(arg) not in _MARSHAL_SCALARS:
                payload = _encode(op)
                op = _decode(payload)          # the replica keeps its own copy
                break
        else:
            if kwds:
                payload = _encode(op)
                op = _decode(payload)
            else:
                payload = _MARSHAL + marshal.dumps(op)
        log = self.log
        lock = log.lock
        if self._is_server:
            log.acquire()
            try:
                with self.mutex:
                    return private_copy(self._write_locked(op, payload))
            finally:
                lock.release()
        with self.mutex:
            log.acquire()
            try:
                if log.end.load() != self.position:
                    self._catch_up_locked()
                method = getattr(self.state, name)
                try:
                    result = method(*op[1], **kwds) if kwds else method(*op[1])
                finally:
                    # Fast path of _append: the record fits and the server is not a ring behind.
                    position = self.position
                    size = len(payload)
                    server_pos = log.server_pos.load()
                    if (size + 4 <= log.capacity // 2
                            and position + size + 4 - server_pos <= log.capacity):
                        log.write(position, _LENGTH.pack(size) + payload)
                        self.position = position + size + 4
                        log.end.store(position + size + 4)
                        log.grew(position, position + size + 4, server_pos)
                    else:
                        self._append(payload)
            finally:
                lock.release()
        if payload[:1] == _PICKLE:
            # A pickle may refer to what only this process holds (a shared object's handle names
            # its sender): the server must unpickle it now, while we are alive.
            self._server_catch_up()
        cls = type(result)
        if cls in _IMMUTABLE:
            return result
        return private_copy(result)

    def write_blind(self, name, args):
        """A mutation that cannot fail (the caller has checked) and returns None: log it without
        bringing this replica up to date first; the next access here applies it in its turn. The
        lock is held only to append one record."""
        for arg in args:
            if type(arg) not in _MARSHAL_SCALARS:
                return self.write(name, args)
        payload = marshal.dumps((name, args))
        size = len(payload) + 1
        record = _LENGTH.pack(size) + _MARSHAL + payload
        size += 4
        log = self.log
        capacity = log.capacity
        if size > capacity // 2:
            return self.write(name, args)
        # No mutex: this touches the shared log only, never this process's replica.
        log.acquire()
        try:
            end = log.end.load()
            server_pos = log.server_pos.load()
            blind = end + size - server_pos <= capacity
            if blind:
                start = end % capacity
                if start + size <= capacity:
                    log.ring[start:start + size] = record
                else:
                    log.write(end, record)
                log.end.store(end + size)
        finally:
            log.lock.release()
        if not blind:
            return self.write(name, args)
        log.grew(end, end + size, server_pos)
        return None

    def _catch_up_locked(self):
        try:
            self._apply_new()
        except _Behind:
            self.position, self.state = self._snapshot(True)

    def _write_locked(self, op, payload):
        self._catch_up_locked()
        try:
            return _call(self.state, op)
        finally:
            self._append(payload)

    def _append(self, payload):
        """Append one record (log lock held, replica current)."""
        log = self.log
        record = _LENGTH.pack(len(payload)) + payload
        if len(record) > log.capacity // 2:
            if self._is_server:
                self._append_resync()
            else:
                self._server_catch_up(payload)
                self.position = log.end.load()
            return
        if self.position + len(record) - log.server_pos.load() > log.capacity:
            self._server_catch_up()
        self._store(record)

    def _store(self, record):
        log = self.log
        log.write(self.position, record)
        self.position += len(record)
        log.end.store(self.position)
        if self._is_server:
            log.server_pos.store(self.position)

    def _append_resync(self):
        self._store(_LENGTH.pack(len(RESYNC)) + RESYNC)

    # --- the server's side of a client's requests -------------------------------------------

    def server_catch_up(self, payload=None):
        """For a client that holds the log's lock: apply what is logged; with payload (a record
        too big for the ring, already applied by the client), apply it too and tell the other
        replicas to resynchronise."""
        with self.mutex:
            self._apply_new()
            if payload is not None:
                _call(self.state, _decode(payload))
                self._append_resync()

    def server_snapshot(self, client_holds_lock=False):
        """For a client that fell behind: (position, pickled state)."""
        if client_holds_lock:
            with self.mutex:
                self._apply_new()
                return self.position, pickle.dumps(self.state, pickle.HIGHEST_PROTOCOL)
        self.log.acquire()
        try:
            with self.mutex:
                self._apply_new()
                return self.position, pickle.dumps(self.state, pickle.HIGHEST_PROTOCOL)
        finally:
            self.log.lock.release()


def _call(state, op):
    method = getattr(state, op[0])
    if len(op) == 2:
        return method(*op[1])
    return method(*op[1], **op[2])
