"""The keeper's client: how a process hands descriptors to its tree's keeper and gets them back.

A shmproc object pickles as a handle naming its sender's descriptor (core/handles.pyx builds and
opens those references). This module is what lets such a handle outlive its sender: a process that
puts handles into a shmproc queue or pipe deposits their descriptors with the tree's keeper
(shmproc/keeper.py) before the message is published; a receiver that can no longer open the
sender's descriptor fetches the keeper's copy, and every receiver tells the keeper when it has
attached, so the copy is closed. The mechanism and its invariants: docs/internals/handles.md.

The tree is named by $SHMPROC_KEEPER, set by its root when it first imports shmproc and inherited
by every process it starts, whatever the start method.
"""
import array
import os
import socket
import struct
import sys
import threading
import time
from typing import Optional

from shmproc import keeper as _keeper

__all__ = ["deposit", "release", "settle", "fetch", "keeper_pid"]

_ENVIRONMENT = "SHMPROC_KEEPER"


def _tree():
    """(name, root pid, root start time) of this process's tree; the first shmproc process of a
    tree makes itself the root."""
    value = os.environ.get(_ENVIRONMENT)
    if value is None or value.count(":") != 2:
        pid = os.getpid()
        value = f"{os.urandom(16).hex()}:{pid}:{_keeper.start_time(pid)}"
        os.environ[_ENVIRONMENT] = value
    return value.split(":")


_NAME, _ROOT_PID, _ROOT_START = _tree()
_ADDRESS = _keeper.socket_address(_NAME)
_UID = os.getuid()
_getpid = os.getpid
_RELEASE_ONE = struct.Struct("=cI24sIQ")
_PEER_CREDENTIALS = struct.Struct("3i")


class _Connection(threading.local):
    """This process's connection to the keeper, one per thread (a sendmsg is one whole message on
    a SOCK_SEQPACKET socket, but a thread may be inside one when another forks). A forked child
    inherits its parent's and must not write to it: it opens its own."""
    pid = 0
    sock: Optional[socket.socket] = None
    watched: set[bytes] = set()         # rings whose write end the keeper holds until they go


_connection = _Connection()


def _connect():
    """A new connection to the keeper, None if there is none (or it is not this user's)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.connect(_ADDRESS)
        _, uid, _ = _PEER_CREDENTIALS.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEER_CREDENTIALS.size))
    except OSError:
        sock.close()
        return None
    if uid != _UID:                     # someone else's socket under our name: never send to it
        sock.close()
        return None
    # Room for the messages of a keeper's TICK at full speed (the kernel caps this at twice
    # net.core.wmem_max: ~550 deposits here), so a sender rarely waits for the keeper to read.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    return sock


def _start_keeper():
    """Start the tree's keeper (it detaches itself; two processes racing both succeed, one keeper
    wins the name)."""
    import subprocess  # only the first process of a tree to deposit pays for it
    subprocess.run([sys.executable, "-I", "-S", _keeper.__file__, _NAME, _ROOT_PID, _ROOT_START],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   close_fds=True, check=False)


def _keeper_connection(start):
    state = _connection
    sock = state.sock
    if sock is not None and state.pid == _getpid():
        return sock
    if sock is not None:
        sock.close()                    # our copy of the parent's socket; the parent keeps its own
    sock = _connect()
    if sock is None and start:
        _start_keeper()
        # Another process of the tree may have won the race to start it and not be listening yet.
        for _ in range(100):
            sock = _connect()
            if sock is not None:
                break
            time.sleep(0.002)
    state.pid, state.sock, state.watched = _getpid(), sock, set()
    return sock


def _send(sock, message, fds=()):
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    try:
        sock.sendmsg([message], ancillary)
        return True
    except OSError:
        _connection.sock = None         # the keeper is gone (its root exited): forget it
        sock.close()
        return False


def deposit(tokens, fds, ring, ring_write_end, until_gone):
    """Hand the descriptors of handles just pickled (fds[i] named by tokens[i]) to the keeper,
    tied to the ring (24 bytes naming it, with its notify write end, or -1) they travel in; the
    keeper holds a queue's write end (until_gone) for as long as the queue lives, so it is passed
    once per connection. False if there is no keeper to hold them: the handles then need their
    sender alive, as before."""
    sock = _keeper_connection(True)
    if sock is None:
        return False
    kind = _keeper.DEPOSIT
    if ring_write_end < 0:
        ring = _keeper.NO_RING
    elif until_gone:
        watched = _connection.watched
        kind = _keeper.DEPOSIT_WATCHED if ring in watched else _keeper.DEPOSIT_WATCHING
        watched.add(ring)
    pid = _getpid()
    for start in range(0, len(tokens), _keeper.MAX_FDS - 1):
        chunk = tokens[start:start + _keeper.MAX_FDS - 1]
        chunk_fds = list(fds[start:start + len(chunk)])
        if ring != _keeper.NO_RING and kind != _keeper.DEPOSIT_WATCHED:
            chunk_fds.append(ring_write_end)
        message = (_keeper.HEADER.pack(kind, pid, ring, len(chunk))
                   + struct.pack(f"={len(chunk)}Q", *chunk))
        if not _send(sock, message, chunk_fds):
            return False
        if kind == _keeper.DEPOSIT_WATCHING:
            kind = _keeper.DEPOSIT_WATCHED
    return True


def release(pid, token):
    """A handle deposited by process pid was attached through its sender's descriptor: the keeper
    may close its copy. Nothing to do when there is no keeper (nothing was deposited then)."""
    sock = _keeper_connection(False)
    if sock is not None:
        _send(sock, _RELEASE_ONE.pack(_keeper.RELEASE, pid, _keeper.NO_RING, 1, token))


def settle():
    """Return once the keeper has acted on every release this process sent (a Pipe's reader about
    to wait for EOF: the keeper may hold the pipe's write end until then). Asked on a new
    connection, which the keeper answers after reading everything already sent to it."""
    if _connection.sock is None:
        return
    sock = _connect()
    if sock is None:
        return
    try:
        sock.sendall(_keeper.FETCH_REQUEST.pack(_keeper.SYNC, 0, 0))
        sock.recv(16)
    except OSError:
        pass
    finally:
        sock.close()


def fetch(pid, token):
    """The keeper's copy of a handle's descriptor (now this process's own, close-on-exec), or -1
    if it has none. The keeper forgets it: a handle is received once."""
    sock = _connect()
    if sock is None:
        return -1
    try:
        sock.sendall(_keeper.FETCH_REQUEST.pack(_keeper.FETCH, pid, token))
        message, ancillary, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC)
    except OSError:
        return -1
    finally:
        sock.close()
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS and len(data) >= 4:
            return array.array("i", data[:4])[0]
    return -1


def keeper_pid():
    """The keeper's pid, or None if this tree has none running (for tests and debugging)."""
    sock = _connect()
    if sock is None:
        return None
    try:
        pid, _, _ = _PEER_CREDENTIALS.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEER_CREDENTIALS.size))
        return pid
    finally:
        sock.close()
