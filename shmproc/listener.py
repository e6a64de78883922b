"""Listener and Client: connections over sockets (AF_UNIX, AF_INET), as multiprocessing.connection's.

Whose is what: the sockets, the framing of messages on them, the connection class they produce
(``multiprocessing.connection.Connection``, here also named ``SocketConnection``) and the
authentication handshake (``deliver_challenge``/``answer_challenge``: HMAC-MD5 on 3.11, the
negotiated digests on 3.12+) are the standard library's, used as they are. So a shmproc Listener and
a standard-library Client talk to each other, and the reverse, with whatever protocol the running
Python speaks, and a socket connection pickles, passes descriptors and goes into ``wait()`` exactly
as multiprocessing's does. Shared memory is no gain between machines, and for a local peer that may be
the standard library's the socket is the common ground.

shmproc's own part is a guard: a Listener bound to an address other hosts can reach and that does not
authenticate (no ``authkey``) warns with ``UnauthenticatedListenerWarning``, since whoever connects
can make this process unpickle what they send.
"""
import ipaddress
import multiprocessing.connection
import warnings
from typing import Any

# Typed as Any: the standard library's type stubs leave out some of these public names.
_mp_connection: Any = multiprocessing.connection

Client = _mp_connection.Client
SocketConnection = _mp_connection.Connection
address_type = _mp_connection.address_type
answer_challenge = _mp_connection.answer_challenge
arbitrary_address = _mp_connection.arbitrary_address
default_family = _mp_connection.default_family
deliver_challenge = _mp_connection.deliver_challenge
families = _mp_connection.families

__all__ = ["Client", "Listener", "SocketConnection", "UnauthenticatedListenerWarning",
           "address_type", "answer_challenge", "arbitrary_address", "default_family",
           "deliver_challenge", "families"]


class UnauthenticatedListenerWarning(RuntimeWarning):
    """A Listener reachable from other hosts accepts connections without authentication."""


class Listener(_mp_connection.Listener):
    """A bound, listening socket whose ``accept()`` returns an authenticated socket connection
    (multiprocessing.connection.Listener). Warns when it is reachable from other hosts without an
    ``authkey``."""

    def __init__(self, address=None, family=None, backlog=1, authkey=None):
        super().__init__(address, family, backlog, authkey)
        if not authkey and _reachable_from_other_hosts(self.address):
            warnings.warn(
                f"Listener on {self.address!r} has no authkey: anyone who can reach this address "
                "can connect, and what a connection receives is unpickled (arbitrary code). Pass "
                "authkey=... to authenticate peers.", UnauthenticatedListenerWarning, stacklevel=2)


def _reachable_from_other_hosts(address):
    """Whether a bound socket address is an IP address other than loopback (a Unix socket is not)."""
    if not isinstance(address, tuple):
        return False
    try:
        return not ipaddress.ip_address(address[0].split("%", 1)[0]).is_loopback
    except ValueError:
        return True
