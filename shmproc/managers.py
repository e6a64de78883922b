"""Managers: shared Python objects served by a process (multiprocessing.managers' API).

``shmproc.Manager()`` starts a SyncManager whose server listens on an AF_UNIX socket in a private
(0700) directory with a random 32-byte key; a TCP address is used only when given, and a
non-loopback one only with an explicit key (manager_transport). The protocol is the standard
library's, so either side may be multiprocessing's.

Speed comes from not going through the server where the semantics allow it (manager_objects):
dicts, lists, namespaces, values and arrays are replicated through a shared-memory log, so that
a process on this machine reads its own replica and writes one log record; queues, locks,
semaphores, conditions, events and barriers are shmproc's shared-memory objects, which a proxy
calls directly. Pools, user-registered types and every proxy on another machine go through the
server as in the standard library. See docs/managers.md.
"""
import os
import signal
from multiprocessing import ProcessError, process, util
from multiprocessing.managers import Array, Namespace, RemoteError, Token, Value

from shmproc import manager_objects, manager_transport, parent_death
from shmproc.manager_proxies import (
    AcquirerProxy,
    ArrayProxy,
    AutoProxy,
    BarrierProxy,
    BaseListProxy,
    BaseProxy,
    ConditionProxy,
    DictProxy,
    EventProxy,
    IteratorProxy,
    ListProxy,
    MakeProxyType,
    ManagerGoneError,
    NamespaceProxy,
    PoolProxy,
    QueueProxy,
    RebuildProxy,
    ValueProxy,
    client,
    convert_to_error,
    dispatch,
    remember_manager,
)
from shmproc.manager_server import Server, all_methods, public_methods, run_server

__all__ = [
    "AcquirerProxy",
    "Array",
    "ArrayProxy",
    "AutoProxy",
    "BarrierProxy",
    "BaseListProxy",
    "BaseManager",
    "BaseProxy",
    "ConditionProxy",
    "DictProxy",
    "EventProxy",
    "IteratorProxy",
    "ListProxy",
    "MakeProxyType",
    "ManagerGoneError",
    "Namespace",
    "NamespaceProxy",
    "PoolProxy",
    "QueueProxy",
    "RebuildProxy",
    "RemoteError",
    "Server",
    "SharedMemoryManager",
    "State",
    "SyncManager",
    "Token",
    "Value",
    "ValueProxy",
    "all_methods",
    "convert_to_error",
    "dispatch",
    "public_methods",
]


class State:
    __slots__ = ["value"]
    INITIAL = 0
    STARTED = 1
    SHUTDOWN = 2


class BaseManager:
    """Starts (or connects to) a server process that holds shared objects.

    ``ssl_context``: an ``ssl.SSLContext`` for TLS on every connection (a server context for
    get_server()/start(), a client one for connect(); a manager started with start() uses the
    same context on both sides). Other arguments as in multiprocessing.managers.BaseManager.
    """
    _registry = {}
    _Server = Server

    def __init__(self, address=None, authkey=None, serializer="pickle", ctx=None, *,
                 shutdown_timeout=1.0, ssl_context=None):
        self._key_given = authkey is not None
        if authkey is None:
            authkey = process.current_process().authkey
        if not isinstance(authkey, (bytes, bytearray)):
            raise TypeError(f"authkey should be a byte string, not {type(authkey).__name__}")
        if serializer not in manager_transport.SERIALIZERS:
            raise ValueError(f"unknown serializer {serializer!r}")
        self._address = address
        self._authkey = process.AuthenticationString(authkey)
        self._state = State()
        self._state.value = State.INITIAL
        self._serializer = serializer
        if ctx is None:
            from shmproc import context
            ctx = context._default_context
        self._ctx = ctx
        self._shutdown_timeout = shutdown_timeout
        self._ssl_context = ssl_context
        self._process = None

    def _check_state(self, what="server"):
        if self._state.value == State.STARTED:
            raise ProcessError(f"Already started {what}")
        if self._state.value == State.SHUTDOWN:
            raise ProcessError("Manager has shut down")
        if self._state.value != State.INITIAL:
            raise ProcessError(f"Unknown state {self._state.value!r}")

    def get_server(self):
        """A server object (serve_forever(), address) to run in this process."""
        self._check_state()
        manager_transport.check_server_address(self._address, self._authkey, self._key_given)
        return self._Server(self._registry, self._address, self._authkey, self._serializer,
                            self._ssl_context)

    def connect(self):
        """Connect to a running manager at self.address."""
        remember_manager(self._address, self._authkey, self._ssl_context, self._serializer)
        self._server_call("dummy")
        self._state.value = State.STARTED

    def start(self, initializer=None, initargs=()):
        """Start a server process for this manager."""
        self._check_state()
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        manager_transport.check_server_address(self._address, self._authkey, self._key_given)
        from shmproc.connection import Pipe
        reader, writer = Pipe(duplex=False)
        self._process = self._ctx.Process(
            target=type(self)._run_server,
            args=(self._registry, self._address, self._authkey, self._serializer, writer,
                  self._ssl_context, initializer, initargs))
        self._process.name = type(self).__name__ + "-" + ":".join(
            str(i) for i in self._process._identity)
        # The manager ends with this process, with a SIGTERM that lets it remove its socket.
        previous = parent_death.get_parent_death_signal(), parent_death.get_daemonic_only()
        parent_death.set_parent_death_signal(signal.SIGTERM, daemonic_only=False)
        try:
            self._process.start()
        finally:
            parent_death.set_parent_death_signal(*previous)
        writer.close()
        try:
            self._address = reader.recv()
        except EOFError:
            self._process.join()
            raise ProcessError(f"the manager process exited (exit code "
                               f"{self._process.exitcode}) before serving") from None
        finally:
            reader.close()
        remember_manager(self._address, self._authkey, self._ssl_context, self._serializer)
        self._state.value = State.STARTED
        self.shutdown = util.Finalize(
            self, type(self)._finalize_manager,
            args=(self._process, self._address, self._authkey, self._state,
                  self._shutdown_timeout), exitpriority=0)

    @classmethod
    def _run_server(cls, registry, address, authkey, serializer, writer, ssl_context=None,
                    initializer=None, initargs=()):
        def make():
            return cls._Server(registry, address, authkey, serializer, ssl_context)
        run_server(make, writer, initializer, initargs)

    def _create(self, typeid, /, *args, **kwds):
        if self._state.value != State.STARTED:
            raise ProcessError("server not yet started")
        conn = client(self._address, self._authkey)
        try:
            ident, exposed = dispatch(conn, None, "create", (typeid,) + args, kwds)
        finally:
            conn.close()
        return Token(typeid, self._address, ident), exposed

    def join(self, timeout=None):
        """Wait for the manager's process to end."""
        if self._process is not None:
            self._process.join(timeout)
            if not self._process.is_alive():
                self._process = None

    def _server_call(self, name, *args):
        """Call a server function on a connection of its own."""
        conn = client(self._address, self._authkey)
        try:
            return dispatch(conn, None, name, args)
        finally:
            conn.close()

    def _debug_info(self):
        return self._server_call("debug_info")

    def _number_of_objects(self):
        return self._server_call("number_of_objects")

    def __enter__(self):
        if self._state.value == State.INITIAL:
            self.start()
        if self._state.value != State.STARTED:
            self._check_state()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.shutdown()

    def shutdown(self):
        """Stop the manager's process (only for a manager this process started)."""
        # Replaced by a Finalize in start(); a manager that was never started has nothing to stop.

    @staticmethod
    def _finalize_manager(process_, address, authkey, state, shutdown_timeout):
        if process_.is_alive():
            try:
                conn = client(address, authkey)
                try:
                    dispatch(conn, None, "shutdown")
                finally:
                    conn.close()
            except Exception:
                pass
            process_.join(timeout=shutdown_timeout)
            if process_.is_alive():
                process_.terminate()
                process_.join(timeout=shutdown_timeout)
                if process_.is_alive():
                    process_.kill()
                    process_.join()
        state.value = State.SHUTDOWN
        # A server killed before it could clean up leaves its private socket directory.
        manager_transport.remove_private_socket(address)
        BaseProxy._address_to_local.pop(address, None)

    @property
    def address(self):
        return self._address

    @classmethod
    def register(cls, typeid, callable=None, proxytype=None, exposed=None, method_to_typeid=None,
                 create_method=True):
        """Register a type (or callable) under typeid, with the proxy type for it."""
        if not isinstance(typeid, str):
            raise TypeError(f"typeid must be a str, not {type(typeid).__name__}")
        if callable is not None and not builtins_callable(callable):
            raise TypeError(f"register({typeid!r}, ...): {callable!r} is not callable")
        if "_registry" not in cls.__dict__:
            cls._registry = cls._registry.copy()
        elif typeid in cls._registry and cls._registry[typeid][0] is not callable:
            raise ValueError(f"typeid {typeid!r} is already registered with {cls.__name__}")
        if proxytype is None:
            proxytype = AutoProxy
        exposed = exposed or getattr(proxytype, "_exposed_", None)
        method_to_typeid = method_to_typeid or getattr(proxytype, "_method_to_typeid_", None)
        if method_to_typeid:
            for key, value in method_to_typeid.items():
                if type(key) is not str or type(value) is not str:
                    raise TypeError(f"method_to_typeid must map str to str, not {key!r}: {value!r}")
        cls._registry[typeid] = (callable, exposed, method_to_typeid, proxytype)
        if create_method:
            def create(self, /, *args, **kwds):
                token, exposed_ = self._create(typeid, *args, **kwds)
                proxy = proxytype(token, self._serializer, manager=self, authkey=self._authkey,
                                  exposed=exposed_)
                conn = client(token.address, self._authkey)
                try:
                    dispatch(conn, None, "decref", (token.id,))
                finally:
                    conn.close()
                return proxy
            create.__name__ = typeid
            setattr(cls, typeid, create)


builtins_callable = callable


class _shmproc:
    """Makes the shmproc primitive of that name, for the server to hold (picklable, for spawn)."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *args, **kwds):
        from shmproc import synchronize
        return manager_objects.Direct(getattr(synchronize, self.name)(*args, **kwds))


def _queue(maxsize=0):
    from shmproc.queues import JoinableQueue
    return manager_objects.Direct(JoinableQueue(maxsize))


def _pool(*args, **kwds):
    """shmproc's Pool, made in the manager process (its proxy goes through the server)."""
    from shmproc.pool import Pool
    return Pool(*args, **kwds)


class SyncManager(BaseManager):
    """A manager with the standard shared types registered (see docs/managers.md for which are
    replicated, which are shmproc objects, and which go through the server)."""


SyncManager.register("Queue", _queue, QueueProxy)
SyncManager.register("JoinableQueue", _queue, QueueProxy)
SyncManager.register("Event", _shmproc("Event"), EventProxy)
SyncManager.register("Lock", _shmproc("Lock"), AcquirerProxy)
SyncManager.register("RLock", _shmproc("RLock"), AcquirerProxy)
SyncManager.register("Semaphore", _shmproc("Semaphore"), AcquirerProxy)
SyncManager.register("BoundedSemaphore", _shmproc("BoundedSemaphore"), AcquirerProxy)
SyncManager.register("Condition", manager_objects.make_condition, ConditionProxy)
SyncManager.register("Barrier", _shmproc("Barrier"), BarrierProxy)
SyncManager.register("Pool", _pool, PoolProxy)
SyncManager.register("list", manager_objects.make_list, ListProxy)
SyncManager.register("dict", manager_objects.make_dict, DictProxy)
SyncManager.register("Value", manager_objects.make_value, ValueProxy)
SyncManager.register("Array", manager_objects.make_array, ArrayProxy)
SyncManager.register("Namespace", manager_objects.make_namespace, NamespaceProxy)
SyncManager.register("Iterator", proxytype=IteratorProxy, create_method=False)
SyncManager.register("AsyncResult", create_method=False)


# --- SharedMemoryManager ------------------------------------------------------------------------

class _SegmentTracker:
    """The names of the multiprocessing.shared_memory blocks a SharedMemoryManager unlinks."""

    def __init__(self, name, segment_names=None):
        self.shared_memory_context_name = name
        self.segment_names = list(segment_names or [])

    def register_segment(self, segment_name):
        self.segment_names.append(segment_name)

    def destroy_segment(self, segment_name):
        from multiprocessing import shared_memory
        self.segment_names.remove(segment_name)
        segment = shared_memory.SharedMemory(segment_name)
        segment.close()
        segment.unlink()

    def unlink(self):
        for segment_name in list(self.segment_names):
            self.destroy_segment(segment_name)

    def __getstate__(self):
        return (self.shared_memory_context_name, self.segment_names)

    def __setstate__(self, state):
        self.__init__(*state)


class SharedMemoryServer(Server):
    public = Server.public + ["track_segment", "release_segment", "list_segments"]

    def __init__(self, *args, **kwds):
        super().__init__(*args, **kwds)
        self.shared_memory_context = _SegmentTracker(f"shm_{self.address}_{os.getpid()}")

    def create(self, conn, typeid, /, *args, **kwds):
        if hasattr(self.registry[typeid][-1], "_shared_memory_proxy"):
            kwds["shared_memory_context"] = self.shared_memory_context
        return super().create(conn, typeid, *args, **kwds)

    def shutdown(self, conn):
        self.shared_memory_context.unlink()
        return super().shutdown(conn)

    def close(self):
        self.shared_memory_context.unlink()
        super().close()

    def track_segment(self, conn, segment_name):
        self.shared_memory_context.register_segment(segment_name)

    def release_segment(self, conn, segment_name):
        self.shared_memory_context.destroy_segment(segment_name)

    def list_segments(self, conn):
        return self.shared_memory_context.segment_names


class SharedMemoryManager(BaseManager):
    """A manager that unlinks, at shutdown, the multiprocessing.shared_memory blocks it made."""
    _Server = SharedMemoryServer

    def __init__(self, *args, **kwds):
        from multiprocessing import resource_tracker
        resource_tracker.ensure_running()
        super().__init__(*args, **kwds)

    def get_server(self):
        self._check_state("SharedMemoryServer")
        return super().get_server()

    def _tracked(self, make, name_of):
        from multiprocessing import shared_memory
        conn = client(self._address, self._authkey)
        try:
            obj = make(shared_memory)
            try:
                dispatch(conn, None, "track_segment", (name_of(obj),))
            except BaseException:
                shared_memory.SharedMemory(name_of(obj)).unlink()
                raise
        finally:
            conn.close()
        return obj

    def SharedMemory(self, size):
        """A new multiprocessing.shared_memory.SharedMemory, unlinked at the manager's shutdown."""
        return self._tracked(lambda sm: sm.SharedMemory(None, create=True, size=size),
                             lambda shm: shm.name)

    def ShareableList(self, sequence):
        """A new ShareableList, unlinked at the manager's shutdown."""
        return self._tracked(lambda sm: sm.ShareableList(sequence), lambda sl: sl.shm.name)

