"""The manager's server: owns the shared objects and answers the proxies' requests.

It speaks the standard library's manager protocol: a connection authenticates, then sends
``(ident, method name, args, kwds)`` requests, the first of which names a server function
(``create``, ``incref``, ``accept_connection``...), and gets ``('#RETURN', value)``,
``('#ERROR', exception)``, ``('#TRACEBACK', text)`` or ``('#PROXY', (exposed, token))`` back. Any
standard-library proxy or manager can talk to it.

Differences from the standard library's server, all about safety and cost:

* authentication runs in the connection's own thread with a deadline (one slow peer holds up no
  one); nothing is unpickled before it succeeds (see manager_transport);
* requests whose name starts with ``_shmproc_`` reach the shared object's own shmproc-side methods
  (the replication log, the shared primitive itself), for shmproc's proxies on this machine;
* the serving loop looks up a method once per object and call, with no per-call debug work.
"""
import os
import signal
import sys
import threading
from multiprocessing import AuthenticationError, process, util
from multiprocessing.managers import Token
from traceback import format_exc

from shmproc import manager_transport

__all__ = ["Server", "all_methods", "public_methods"]


def all_methods(obj):
    """Names of the callable attributes of obj."""
    return [name for name in dir(obj) if callable(getattr(obj, name, None))]


def public_methods(obj):
    """Names of the callable attributes of obj that do not start with an underscore."""
    return [name for name in all_methods(obj) if name[0] != "_"]


class Server:
    """Serves the objects of one manager (multiprocessing.managers.Server's interface)."""

    public = ["shutdown", "create", "accept_connection", "get_methods", "debug_info",
              "number_of_objects", "dummy", "incref", "decref"]

    def __init__(self, registry, address, authkey, serializer, ssl_context=None):
        if not isinstance(authkey, bytes):
            raise TypeError(f"Authkey {authkey!r} is type {type(authkey)!s}, not bytes")
        if serializer not in manager_transport.SERIALIZERS:
            raise ValueError(f"unknown serializer {serializer!r}")
        self.registry = registry
        self.authkey = process.AuthenticationString(authkey)
        self._made_address = address is None
        if address is None:
            address = manager_transport.private_socket_address()
        self.listener = manager_transport.listen(address, ssl_context, serializer=serializer)
        self.address = self.listener.address
        self.id_to_obj: dict = {"0": (None, (), None)}
        self.id_to_refcount = {}
        self.id_to_local_proxy_obj = {}
        self.mutex = threading.Lock()
        self.stop_event = threading.Event()

    # --- lifetime ---------------------------------------------------------------------------

    def serve_forever(self):
        """Serve until shutdown() is requested (or the process is told to stop)."""
        process.current_process()._manager_server = self
        accepter = threading.Thread(target=self.accepter, daemon=True)
        accepter.start()
        try:
            while not self.stop_event.is_set():
                self.stop_event.wait(1)
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.close()
            if threading.current_thread() is threading.main_thread():
                # The manager process's main: end the process as the standard library's does.
                if sys.stdout != sys.__stdout__:
                    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
                sys.exit(0)

    def close(self):
        try:
            self.listener.close()
        except OSError:
            pass
        if self._made_address:
            manager_transport.remove_private_socket(self.address)

    def accepter(self):
        while True:
            try:
                conn = self.listener.accept()
            except OSError:
                if self.stop_event.is_set():
                    return
                continue
            threading.Thread(target=self.handle_request, args=(conn,), daemon=True).start()

    def handle_request(self, conn):
        """A new connection: authenticate it, then run its first request."""
        try:
            self._handle_request(conn)
        except SystemExit:
            pass
        finally:
            conn.close()

    def _handle_request(self, conn):
        try:
            manager_transport.authenticate_peer(conn, self.authkey)
        except AuthenticationError as exc:
            util.info("manager refused a connection: %s", exc)
            return
        try:
            ignore, name, args, kwds = conn.recv()
            if name not in self.public:
                raise ValueError(f"{name!r} unrecognized")
            reply = ("#RETURN", getattr(self, name)(conn, *args, **kwds))
        except EOFError:
            return
        except Exception:
            reply = ("#TRACEBACK", format_exc())
        try:
            conn.send(reply)
        except Exception:
            try:
                conn.send(("#TRACEBACK", format_exc()))
            except Exception:
                pass

    # --- serving a proxy's connection -------------------------------------------------------

    def serve_client(self, conn):
        """Answer method calls from the proxies of one process (or thread) on this connection."""
        recv, send = conn.recv, conn.send
        id_to_obj = self.id_to_obj
        while not self.stop_event.is_set():
            name = obj = None
            try:
                ident, name, args, kwds = recv()
                try:
                    obj, exposed, gettypeid = id_to_obj[ident]
                except KeyError:
                    obj, exposed, gettypeid = self.id_to_local_proxy_obj[ident]
                if name in exposed:
                    function = _method(obj, name)
                elif name.startswith("_shmproc_") and hasattr(obj, name):
                    function = getattr(obj, name)
                else:
                    fallback = self.fallback_mapping.get(name)
                    if fallback is None:
                        raise AttributeError(
                            f"method {name!r} of {type(obj)!r} object is not in exposed={exposed!r}")
                    reply = ("#RETURN", fallback(self, conn, ident, obj, *args, **kwds))
                    function = None
                if function is not None:
                    try:
                        result = function(*args, **kwds)
                    except Exception as exc:
                        reply = ("#ERROR", exc)
                    else:
                        typeid = gettypeid and gettypeid.get(name)
                        if typeid:
                            rident, rexposed = self.create(conn, typeid, result)
                            reply = ("#PROXY", (rexposed, Token(typeid, self.address, rident)))
                        else:
                            reply = ("#RETURN", result)
            except EOFError:
                sys.exit(0)
            except Exception:
                reply = ("#TRACEBACK", format_exc())
            try:
                try:
                    send(reply)
                except Exception:
                    send(("#UNSERIALIZABLE", format_exc()))
            except Exception:
                conn.close()
                sys.exit(1)

    def fallback_getvalue(self, conn, ident, obj):
        value = getattr(obj, "_shmproc_value", None)
        return value() if value is not None else obj

    def fallback_str(self, conn, ident, obj):
        return str(self.fallback_getvalue(conn, ident, obj))

    def fallback_repr(self, conn, ident, obj):
        return repr(self.fallback_getvalue(conn, ident, obj))

    fallback_mapping = {"__str__": fallback_str, "__repr__": fallback_repr,
                        "#GETVALUE": fallback_getvalue}

    # --- the server functions a fresh connection may call -----------------------------------

    def dummy(self, conn):
        pass

    def debug_info(self, conn):
        """One line per shared object with its reference count."""
        with self.mutex:
            return "\n".join(
                f"  {ident}:       refcount={count}\n    {str(self.id_to_obj[ident][0])[:75]}"
                for ident, count in sorted(self.id_to_refcount.items()) if ident != "0")

    def number_of_objects(self, conn):
        return len(self.id_to_refcount)

    def shutdown(self, conn):
        try:
            conn.send(("#RETURN", None))
        finally:
            self.stop_event.set()

    def create(self, conn, typeid, /, *args, **kwds):
        """Make a shared object of a registered type; return its ident and exposed methods."""
        with self.mutex:
            callable_, exposed, method_to_typeid, proxytype = self.registry[typeid]
            if callable_ is None:
                if kwds or len(args) != 1:
                    raise ValueError("Without callable, must have one non-keyword argument")
                obj = args[0]
            else:
                obj = callable_(*args, **kwds)
            if exposed is None:
                exposed = public_methods(obj)
            if method_to_typeid is not None:
                if not isinstance(method_to_typeid, dict):
                    raise TypeError(f"Method_to_typeid {method_to_typeid!r}: type "
                                    f"{type(method_to_typeid)!s}, not dict")
                exposed = list(exposed) + list(method_to_typeid)
            ident = f"{id(obj):x}"
            self.id_to_obj[ident] = (obj, set(exposed), method_to_typeid)
            self.id_to_refcount.setdefault(ident, 0)
        self.incref(conn, ident)
        return ident, tuple(exposed)

    def get_methods(self, conn, token):
        return tuple(self.id_to_obj[token.id][1])

    def accept_connection(self, conn, name):
        threading.current_thread().name = name
        conn.send(("#RETURN", None))
        self.serve_client(conn)

    def incref(self, conn, ident):
        with self.mutex:
            if ident in self.id_to_refcount:
                self.id_to_refcount[ident] += 1
            elif ident in self.id_to_local_proxy_obj:
                # Only the manager's own (nested) proxies kept it: track it again.
                self.id_to_refcount[ident] = 1
                self.id_to_obj[ident] = self.id_to_local_proxy_obj[ident]
            else:
                raise KeyError(ident)

    def decref(self, conn, ident):
        if ident not in self.id_to_refcount and ident in self.id_to_local_proxy_obj:
            return
        with self.mutex:
            if self.id_to_refcount[ident] <= 0:
                raise AssertionError(f"Id {ident!s} ({self.id_to_obj[ident]!r}) has refcount "
                                     f"{self.id_to_refcount[ident]:n}, not 1+")
            self.id_to_refcount[ident] -= 1
            if self.id_to_refcount[ident]:
                return
            del self.id_to_refcount[ident]
        # Drop the object outside the mutex: if it holds proxies of this manager, their decref
        # needs the mutex.
        self.id_to_obj[ident] = (None, (), None)
        with self.mutex:
            del self.id_to_obj[ident]


def _method(obj, name):
    table = getattr(type(obj), "_shmproc_dispatch", None)
    if table is not None and name in table:
        return getattr(obj, table[name])
    return getattr(obj, name)


def run_server(server_factory, writer, initializer=None, initargs=()):
    """The manager process's main: serve until shut down, or until SIGTERM, which a shmproc
    process gets when its parent dies (then remove the socket directory and go)."""
    global _server_pid
    _server_pid = os.getpid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    # Processes the manager forks (a Pool's workers) must die of SIGTERM as usual.
    os.register_at_fork(after_in_child=_default_sigterm)
    if initializer is not None:
        initializer(*initargs)
    server = server_factory()
    writer.send(server.address)
    writer.close()
    util.info("manager serving at %r", server.address)
    server.serve_forever()


_server_pid = None


def _default_sigterm():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_on_signal(signum, frame):
    if os.getpid() != _server_pid:
        # A process forked by the manager (a Pool's worker) inherited this handler: die as it
        # would have without it.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise SystemExit(0)
