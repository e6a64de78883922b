"""How a manager and its clients reach each other: addresses, keys, TLS and the handshake.

The wire protocol is multiprocessing.connection's (length-prefixed frames, the HMAC challenge in
both directions, then pickles), so a standard-library client can use a shmproc manager and the
reverse, given the same key. What this module adds is policy:

* a manager started without an address listens on an AF_UNIX socket inside a fresh 0700 directory,
  never on TCP;
* a TCP address that is not loopback needs an explicit key of at least ``MIN_NETWORK_KEY`` bytes;
* the server authenticates a peer before it unpickles anything, drops a peer that has not finished
  the handshake within ``HANDSHAKE_DEADLINE`` seconds, and reads at most 256 bytes before that
  (the standard library's challenge functions bound their reads so);
* with ``ssl_context`` every connection is TLS, and the HMAC handshake runs inside it.
"""
import ipaddress
import os
import pickle
import select
import shutil
import socket
import struct
import tempfile
import threading
import warnings
from multiprocessing import AuthenticationError

# shmproc.connection's Listener and Client speak multiprocessing.connection's protocol (they are its
# socket connections), so standard-library peers interoperate.
from shmproc.connection import (
    Client as _PlainClient,
)
from shmproc.connection import (
    Listener as _PlainListener,
)
from shmproc.connection import (
    UnauthenticatedListenerWarning,
    answer_challenge,
    deliver_challenge,
)
from shmproc.connection import (
    XmlClient as _XmlClient,
)
from shmproc.connection import (
    XmlListener as _XmlListener,
)

SERIALIZERS = ("pickle", "xmlrpclib")

__all__ = ["HANDSHAKE_DEADLINE", "MIN_NETWORK_KEY", "check_server_address", "connect",
           "listen", "private_socket_address", "remove_private_socket"]

HANDSHAKE_DEADLINE = 5.0
MIN_NETWORK_KEY = 16
_SOCKET_DIRECTORY_PREFIX = "shmproc-manager-"
_SOCKET_NAME = "manager.sock"


def private_socket_address():
    """A fresh AF_UNIX path in a new directory only this user can enter (mode 0700)."""
    directory = tempfile.mkdtemp(prefix=_SOCKET_DIRECTORY_PREFIX)
    os.chmod(directory, 0o700)
    return os.path.join(directory, _SOCKET_NAME)


def remove_private_socket(address):
    """Remove the socket and its directory if private_socket_address() made them."""
    if not isinstance(address, str):
        return
    directory, name = os.path.split(address)
    if name == _SOCKET_NAME and os.path.basename(directory).startswith(_SOCKET_DIRECTORY_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)


def _is_loopback(host):
    if host in ("", "0.0.0.0", "::"):
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def is_loopback_address(address):
    """Whether a manager address is on this machine for sure (AF_UNIX or a loopback host)."""
    return isinstance(address, str) or (isinstance(address, tuple) and _is_loopback(address[0]))


def check_server_address(address, authkey, key_given):
    """Refuse to listen where strangers can reach us without a real key."""
    if isinstance(address, tuple) and not _is_loopback(address[0]):
        if not key_given:
            raise ValueError(
                f"refusing to listen on {address[0]!r}, which is reachable from other machines, "
                f"with the process's default key: pass authkey= (at least {MIN_NETWORK_KEY} "
                f"random bytes) shared with the clients, or bind to 127.0.0.1")
        if len(authkey) < MIN_NETWORK_KEY:
            raise ValueError(
                f"refusing to listen on {address[0]!r}, which is reachable from other machines, "
                f"with a {len(authkey)}-byte key: an authkey of at least {MIN_NETWORK_KEY} random "
                f"bytes is needed there (os.urandom(32) makes one)")


# --- TLS connections: multiprocessing's framing over an ssl socket --------------------------------

class SocketConnection:
    """multiprocessing.connection.Connection's interface and framing over a (TLS) socket object."""

    def __init__(self, sock):
        self._sock = sock

    def fileno(self):
        return self._sock.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def closed(self):
        return self._sock is None

    def close(self):
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()

    def send_bytes(self, buf, offset=0, size=None):
        data = memoryview(buf).cast("B")[offset:None if size is None else offset + size]
        n = len(data)
        header = struct.pack("!i", n) if n <= 0x7fffffff else struct.pack("!iQ", -1, n)
        self._sock.sendall(header + bytes(data) if n < 16384 else header)
        if n >= 16384:
            self._sock.sendall(data)

    def _recv_exact(self, n):
        chunks, remaining = [], n
        while remaining:
            chunk = self._sock.recv(min(remaining, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def recv_bytes(self, maxlength=None):
        size, = struct.unpack("!i", self._recv_exact(4))
        if size == -1:
            size, = struct.unpack("!Q", self._recv_exact(8))
        if maxlength is not None and size > maxlength:
            raise OSError("bad message length")
        return self._recv_exact(size)

    def send(self, obj):
        self.send_bytes(pickle.dumps(obj, protocol=pickle.DEFAULT_PROTOCOL))

    def recv(self):
        return pickle.loads(self.recv_bytes())

    def poll(self, timeout=0.0):
        if getattr(self._sock, "pending", lambda: 0)():
            return True
        return bool(select.select([self._sock], [], [], timeout)[0])


class _TLSListener:
    def __init__(self, address, ssl_context, backlog):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET6 \
            if ":" in address[0] else socket.AF_INET
        self._socket = socket.socket(family)
        if family != socket.AF_UNIX:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(address)
        self._socket.listen(backlog)
        self.address = self._socket.getsockname()
        self._ssl_context = ssl_context

    def accept(self):
        sock, _ = self._socket.accept()
        sock.settimeout(HANDSHAKE_DEADLINE)
        try:
            sock = self._ssl_context.wrap_socket(sock, server_side=True)
        except (OSError, ValueError):
            sock.close()
            raise OSError("TLS handshake failed") from None
        sock.settimeout(None)
        return SocketConnection(sock)

    def close(self):
        self._socket.close()


def listen(address, ssl_context=None, backlog=128, serializer="pickle"):
    """A listener that does not authenticate in accept(): the server does, per connection, with
    a deadline (authenticate_peer)."""
    if ssl_context is not None:
        if serializer != "pickle":
            raise ValueError("TLS managers use the 'pickle' serializer")
        return _TLSListener(address, ssl_context, backlog)
    if serializer == "xmlrpclib":
        return _XmlListener(address=address, backlog=backlog)
    with warnings.catch_warnings():
        # No authkey on purpose: the server authenticates each connection itself, in the
        # connection's thread and with a deadline, so that a slow peer holds up no one.
        warnings.simplefilter("ignore", UnauthenticatedListenerWarning)
        return _PlainListener(address=address, backlog=backlog)


def connect(address, authkey, ssl_context=None, serializer="pickle"):
    """A connection to a manager, authenticated in both directions (AuthenticationError if not)."""
    if ssl_context is None:
        if serializer == "xmlrpclib":
            return _XmlClient(address, authkey=authkey)
        return _PlainClient(address, authkey=authkey)
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    sock = socket.socket(family)
    sock.settimeout(HANDSHAKE_DEADLINE)
    try:
        sock.connect(address)
        server_hostname = None if family == socket.AF_UNIX else address[0]
        sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    conn = SocketConnection(sock)
    try:
        # The challenge functions only call send_bytes/recv_bytes: any connection object does.
        answer_challenge(conn, authkey)
        deliver_challenge(conn, authkey)
    except BaseException:
        conn.close()
        raise
    return conn


class _Deadline:
    """Shuts a connection's socket down if the handshake is still running at the deadline, which
    unblocks the read in progress (with EOFError) however slowly the peer trickles bytes."""

    def __init__(self, conn, seconds):
        self._conn = conn
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self.expired = False

    def _expire(self):
        self.expired = True
        try:
            sock = socket.socket(fileno=os.dup(self._conn.fileno()))
        except OSError:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        self._timer.cancel()


def authenticate_peer(conn, authkey, deadline=HANDSHAKE_DEADLINE):
    """The server's half of the handshake: challenge the peer, answer its challenge, all within
    the deadline. Reads only bounded byte strings; raises AuthenticationError on any failure."""
    with _Deadline(conn, deadline) as timer:
        try:
            deliver_challenge(conn, authkey)
            answer_challenge(conn, authkey)
        except AuthenticationError:
            raise
        except (OSError, EOFError) as exc:
            reason = "did not authenticate within the deadline" if timer.expired else \
                f"broke off the handshake ({type(exc).__name__})"
            raise AuthenticationError(f"peer {reason}") from None
