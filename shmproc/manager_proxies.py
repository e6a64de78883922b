"""Proxies: how a process reaches a manager's shared objects (multiprocessing.managers' API).

A proxy speaks the standard library's protocol over a connection per thread, so it works with any
manager, ours or the standard library's, local or remote. On this machine, with a shmproc manager,
the proxies of replicated and direct objects (manager_objects) attach on first use and from then on
work in shared memory: a dict read is a look at one shared counter and a local lookup, a write one
record in the shared log; a queue or lock proxy calls the shmproc object itself.

A process that attached keeps a watch on the manager (a connection whose read returns only when
the manager is gone), so that once the manager dies every call raises ``ManagerGoneError`` (an
``EOFError``, as a standard proxy's broken connection gives) within milliseconds.
"""
import os
import threading
from multiprocessing import process, util
from multiprocessing.context import get_spawning_popen
from multiprocessing.managers import RemoteError, Token

from shmproc import manager_transport
from shmproc.manager_objects import BLIND, READERS, WRITERS, blind_check
from shmproc.manager_replica import Replica

__all__ = ["AcquirerProxy", "ArrayProxy", "AutoProxy", "BarrierProxy", "BaseListProxy",
           "BaseProxy", "ConditionProxy", "DictProxy", "EventProxy", "IteratorProxy",
           "ListProxy", "MakeProxyType", "ManagerGoneError", "NamespaceProxy", "PoolProxy",
           "QueueProxy", "RebuildProxy", "ValueProxy", "dispatch"]


class ManagerGoneError(EOFError):
    """The manager process behind a proxy has exited or was killed."""


# Keys and TLS contexts of the managers this process knows, by address: a proxy that arrives
# without a key (returned by a method, or sent through a queue) uses its manager's.
_keys = {}
_ssl_contexts = {}
_serializers = {}


def remember_manager(address, authkey, ssl_context, serializer="pickle"):
    _keys[address] = authkey
    _serializers[address] = serializer
    _ssl_contexts[address] = ssl_context


def client(address, authkey):
    return manager_transport.connect(address, authkey, _ssl_contexts.get(address),
                                     _serializers.get(address, "pickle"))


def dispatch(conn, ident, name, args=(), kwds=None):
    """Send one request on conn and return its result (or raise its error)."""
    conn.send((ident, name, args, kwds or {}))
    kind, result = conn.recv()
    if kind == "#RETURN":
        return result
    raise convert_to_error(kind, result)


def convert_to_error(kind, result):
    if kind == "#ERROR":
        return result
    if kind in ("#TRACEBACK", "#UNSERIALIZABLE"):
        if not isinstance(result, str):
            return TypeError(f"Result {result!r} (kind {kind!r}) type is {type(result)}, not str")
        if kind == "#UNSERIALIZABLE":
            return RemoteError(f"Unserializable message: {result}\n")
        return RemoteError(result)
    return ValueError(f"Unrecognized message type {kind!r}")


# --- the watch on a manager ------------------------------------------------------------------

class _Watch:
    """Learns promptly that a manager has gone: a thread blocked reading a connection the server
    never answers. ``dead`` is False while the manager lives, True once it is gone, None in a
    forked child until the child starts its own watch."""

    def __init__(self, address, authkey):
        self.address = address
        self.dead: bool | None = False
        self._conn = client(address, authkey)
        dispatch(self._conn, None, "accept_connection", ("shmproc-watch",))
        threading.Thread(target=self._wait, name="shmproc-manager-watch", daemon=True).start()

    def _wait(self):
        conn = self._conn
        try:
            conn.recv_bytes()
        except BaseException:
            pass
        if self._conn is conn:
            self.dead = True

    def forget_after_fork(self):
        conn, self._conn = self._conn, None
        self.dead = None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass


_watches = {}
_watches_mutex = threading.Lock()


def _watch(address, authkey):
    with _watches_mutex:
        watch = _watches.get(address)
        if watch is None or watch.dead is None:
            watch = _watches[address] = _Watch(address, authkey)
        return watch


def _forget_watches_after_fork():
    global _watches_mutex
    _watches_mutex = threading.Lock()
    for watch in _watches.values():
        watch.forget_after_fork()


os.register_at_fork(after_in_child=_forget_watches_after_fork)


def _gone(proxy):
    return ManagerGoneError(f"the manager at {proxy._token.address!r} has exited: "
                            f"its shared {proxy._token.typeid} is gone")


_attach_mutex = threading.RLock()
os.register_at_fork(after_in_child=lambda: globals().update(_attach_mutex=threading.RLock()))


class _ProcessLocalSet(set):
    def __init__(self):
        util.register_after_fork(self, lambda obj: obj.clear())

    def __reduce__(self):
        return type(self), ()


# --- the base proxy -------------------------------------------------------------------------

class BaseProxy:
    """A reference to a shared object in a manager (multiprocessing.managers.BaseProxy)."""
    _address_to_local = {}
    _mutex = util.ForkAwareThreadLock()
    _local = False       # what a proxy with a shmproc fast path replaces on first use

    def __init__(self, token, serializer, manager=None, authkey=None, exposed=None, incref=True,
                 manager_owned=False):
        with BaseProxy._mutex:
            tls_idset = BaseProxy._address_to_local.get(token.address)
            if tls_idset is None:
                tls_idset = util.ForkAwareLocal(), _ProcessLocalSet()
                BaseProxy._address_to_local[token.address] = tls_idset
        self._tls, self._idset = tls_idset
        self._token = token
        self._id = token.id
        self._manager = manager
        self._serializer = serializer
        if serializer != "pickle":
            _serializers[token.address] = serializer
            self._local = False
        self._owned_by_manager = manager_owned
        if authkey is not None:
            self._authkey = process.AuthenticationString(authkey)
        elif manager is not None:
            self._authkey = manager._authkey
        else:
            self._authkey = process.AuthenticationString(
                _keys.get(token.address) or process.current_process().authkey)
        if incref:
            self._incref()
        util.register_after_fork(self, BaseProxy._after_fork)

    def _Client(self, address, authkey):
        return client(address, authkey)

    def _connect(self):
        name = process.current_process().name
        if threading.current_thread().name != "MainThread":
            name += "|" + threading.current_thread().name
        conn = client(self._token.address, self._authkey)
        dispatch(conn, None, "accept_connection", (name,))
        self._tls.connection = conn

    def _callmethod(self, methodname, args=(), kwds=None):
        """Call a method of the referent in the manager; return a copy of the result."""
        kwds = kwds or {}
        try:
            conn = self._tls.connection
        except AttributeError:
            self._connect()
            conn = self._tls.connection
        conn.send((self._id, methodname, args, kwds))
        kind, result = conn.recv()
        if kind == "#RETURN":
            return result
        if kind == "#PROXY":
            exposed, token = result
            proxytype = self._manager._registry[token.typeid][-1] if self._manager else \
                _proxytype_of(token.typeid)
            token.address = self._token.address
            proxy = proxytype(token, self._serializer, manager=self._manager,
                              authkey=self._authkey, exposed=exposed)
            conn = client(token.address, self._authkey)
            dispatch(conn, None, "decref", (token.id,))
            return proxy
        raise convert_to_error(kind, result)

    def _getvalue(self):
        """A copy of the referent."""
        return self._callmethod("#GETVALUE")

    def _incref(self):
        if self._owned_by_manager:
            return
        conn = client(self._token.address, self._authkey)
        dispatch(conn, None, "incref", (self._id,))
        self._idset.add(self._id)
        state = self._manager and self._manager._state
        self._close = util.Finalize(
            self, BaseProxy._decref,
            args=(self._token, self._authkey, state, self._tls, self._idset), exitpriority=10)

    @staticmethod
    def _decref(token, authkey, state, tls, idset):
        idset.discard(token.id)
        if state is None or state.value == 1:      # State.STARTED
            try:
                conn = client(token.address, authkey)
                dispatch(conn, None, "decref", (token.id,))
            except Exception as exc:
                util.debug("... decref failed %s", exc)
        if not idset and hasattr(tls, "connection"):
            tls.connection.close()
            del tls.connection

    def _after_fork(self):
        self._manager = None
        try:
            self._incref()
        except Exception as exc:
            util.info("incref failed: %s", exc)

    def __reduce__(self):
        kwds = {}
        if get_spawning_popen() is not None:
            kwds["authkey"] = bytes(self._authkey)
        if getattr(self, "_isauto", False):
            kwds["exposed"] = self._exposed_
            return (RebuildProxy, (AutoProxy, self._token, self._serializer, kwds))
        return (RebuildProxy, (type(self), self._token, self._serializer, kwds))

    def __deepcopy__(self, memo):
        return self._getvalue()

    def __repr__(self):
        return f"<{type(self).__name__} object, typeid {self._token.typeid!r} at {id(self):#x}>"

    def __str__(self):
        try:
            return self._callmethod("__repr__")
        except Exception:
            return repr(self)[:-1] + "; '__str__()' failed>"

    # --- the shmproc fast path --------------------------------------------------------------

    def _attach(self):
        """Try the fast path once: a replica or the shmproc object itself, or False."""
        with _attach_mutex:
            if self._local is None:
                self._local = self._attach_now()
            return self._local

    def _attach_now(self):
        address = self._token.address
        if not manager_transport.is_loopback_address(address):
            return False
        try:
            kind, *rest = self._callmethod("_shmproc_attach")
            watch = _watch(address, self._authkey)
        except Exception:
            return False
        if kind == "replica":
            log, position, blob = rest
            import pickle
            local = Replica(log, position, pickle.loads(blob), self._snapshot, self._catch_up)
        else:
            local, = rest
        self._watch = watch
        return local

    def _fast(self):
        """The local replica or shared object, False for the remote path; raises once the
        manager is gone."""
        local = self._local
        if local is None:
            local = self._attach()
        if local is not False:
            dead = self._watch.dead
            if dead:
                raise _gone(self)
            if dead is None:
                self._watch = _watch(self._token.address, self._authkey)
        return local

    def _snapshot(self, client_holds_lock):
        import pickle
        position, blob = self._callmethod("_shmproc_snapshot", (client_holds_lock,))
        return position, pickle.loads(blob)

    def _catch_up(self, payload=None):
        self._callmethod("_shmproc_catch_up", (payload,))


def RebuildProxy(func, token, serializer, kwds):
    """Unpickle a proxy (in the manager's own process: one that does not count as a reference)."""
    server = getattr(process.current_process(), "_manager_server", None)
    if server and server.address == token.address:
        kwds["manager_owned"] = True
        if token.id not in server.id_to_local_proxy_obj:
            server.id_to_local_proxy_obj[token.id] = server.id_to_obj[token.id]
    incref = kwds.pop("incref", True) and not getattr(process.current_process(), "_inheriting",
                                                      False)
    return func(token, serializer, incref=incref, **kwds)


_proxy_types: dict = {}


def MakeProxyType(name, exposed, _cache=_proxy_types):
    """A proxy type whose methods are the names in exposed, each a remote call."""
    exposed = tuple(exposed)
    try:
        return _cache[(name, exposed)]
    except KeyError:
        pass
    namespace = {name_: _remote_method(name_) for name_ in exposed}
    proxy_type = type(name, (BaseProxy,), namespace)
    proxy_type._exposed_ = exposed
    _cache[(name, exposed)] = proxy_type
    return proxy_type


def _remote_method(name):
    def method(self, /, *args, **kwds):
        return self._callmethod(name, args, kwds)
    method.__name__ = name
    return method


def AutoProxy(token, serializer, manager=None, authkey=None, exposed=None, incref=True,
              manager_owned=False):
    """A proxy whose methods are those the manager reports for the object."""
    if authkey is None and manager is not None:
        authkey = manager._authkey
    if authkey is None:
        authkey = _keys.get(token.address) or process.current_process().authkey
    if exposed is None:
        conn = client(token.address, authkey)
        try:
            exposed = dispatch(conn, None, "get_methods", (token,))
        finally:
            conn.close()
    proxy_type = MakeProxyType(f"AutoProxy[{token.typeid}]", exposed)
    proxy = proxy_type(token, serializer, manager=manager, authkey=authkey, incref=incref,
                       manager_owned=manager_owned)
    proxy._isauto = True
    return proxy


def _proxytype_of(typeid):
    from shmproc.managers import SyncManager
    entry = SyncManager._registry.get(typeid)
    return entry[-1] if entry else AutoProxy


# --- replicated objects: dict, list, Namespace, Value, Array ------------------------------------

def _fast_method(name, on_local):
    """A proxy method: on_local(local object, name, args, kwds) once the fast path is attached,
    else a call through the manager. Checks that the manager is alive (one attribute load)."""
    def method(self, /, *args, **kwds):
        local = self._local
        if local is None or local is False or self._watch.dead is not False:
            local = self._fast()
            if local is False:
                return self._callmethod(name, args, kwds)
        return on_local(local, name, args, kwds)
    method.__name__ = name
    return method


def _read(replica, name, args, kwds):
    return replica.read(name, args)


def _write(replica, name, args, kwds):
    return replica.write(name, args, kwds)


def _call_direct(obj, name, args, kwds):
    return getattr(obj, name)(*args, **kwds)


def _replica_reader(name):
    return _fast_method(name, _read)


def _replica_list_reader(name):
    def method(self, /, *args):
        local = self._fast()
        if local is False:
            return self._callmethod(name, args)
        return local.read_with(lambda state: _copy_list(getattr(state, name)(*args)))
    method.__name__ = name
    return method


def _copy_list(values):
    from shmproc.manager_replica import private_copy
    return private_copy(list(values))


def _replica_writer(name):
    return _fast_method(name, _write)


_ATTRIBUTE_ACCESS = ("__getattribute__", "__setattr__", "__delattr__")


def _blind_writer(typeid, name, arity):
    def on_local(replica, name, args, kwds):
        if len(args) != arity or kwds:
            return replica.write(name, args, kwds)      # raises as the method would
        blind_check(typeid, args)
        return replica.write_blind(name, args)
    return _fast_method(name, on_local)


def _replicated_proxy(name, typeid, bases=(), extra=None):
    namespace = {"_exposed_": READERS[typeid][:-1] + WRITERS[typeid] if typeid == "dict" else
                 READERS[typeid] + WRITERS[typeid], "_local": None}
    for method in READERS[typeid]:
        if method in _ATTRIBUTE_ACCESS:
            continue
        namespace[method] = (_replica_list_reader(method)
                             if method in ("keys", "values", "items") else _replica_reader(method))
    for method in WRITERS[typeid]:
        if method not in _ATTRIBUTE_ACCESS:
            namespace[method] = _replica_writer(method)
    blind = BLIND.get(typeid)
    if blind is not None and blind not in _ATTRIBUTE_ACCESS:
        namespace[blind] = _blind_writer(typeid, blind, 2 if blind == "__setitem__" else 1)
    namespace.update(extra or {})
    return type(name, bases + (BaseProxy,), namespace)


def _dict_iter(self):
    local = self._fast()
    if local is False:
        return self._callmethod("__iter__")
    return _live_iterator(local)


def _live_iterator(replica):
    """Iterate the replica's dict itself, so that a change of size during the iteration raises
    RuntimeError at the next step, as a server-side iterator does."""
    with replica.mutex:
        replica.refresh()
        iterator = iter(replica.state)
    return _steps(replica, iterator)


def _steps(replica, iterator):
    from shmproc.manager_replica import private_copy
    while True:
        with replica.mutex:
            replica.refresh()
            try:
                key = next(iterator)
            except StopIteration:
                return
        yield private_copy(key)


DictProxy = _replicated_proxy("DictProxy", "dict", extra={
    "__iter__": _dict_iter, "_method_to_typeid_": {"__iter__": "Iterator"}})
DictProxy._exposed_ = DictProxy._exposed_ + ("__iter__",)


def _reversed(self):
    local = self._fast()
    if local is False:
        return self._callmethod("__reversed__")
    return iter(local.read_with(lambda state: _copy_list(reversed(state))))


BaseListProxy = _replicated_proxy("BaseListProxy", "list", extra={"__reversed__": _reversed})


class ListProxy(BaseListProxy):
    def __iadd__(self, value):
        self.extend(value)
        return self

    def __imul__(self, value):
        _replica_writer("__imul__")(self, value)
        return self


class NamespaceProxy(_replicated_proxy("_NamespaceBase", "Namespace")):
    _exposed_ = ("__getattribute__", "__setattr__", "__delattr__")

    def __getattr__(self, key):
        if key[0] == "_":
            return object.__getattribute__(self, key)
        return _namespace_get(self, key)

    def __setattr__(self, key, value):
        if key[0] == "_":
            return object.__setattr__(self, key, value)
        return _namespace_set(self, key, value)

    def __delattr__(self, key):
        if key[0] == "_":
            return object.__delattr__(self, key)
        return _replica_writer("__delattr__")(self, key)


_namespace_get = _replica_reader("__getattribute__")
_namespace_set = _blind_writer("Namespace", "__setattr__", 2)


class ValueProxy(_replicated_proxy("_ValueBase", "Value")):
    value = property(lambda self: self.get(), lambda self, value: self.set(value))

    __class_getitem__ = classmethod(__import__("types").GenericAlias)


ArrayProxy = _replicated_proxy("ArrayProxy", "Array")


# --- direct objects: the shmproc object itself ------------------------------------------------

def _direct(name):
    return _fast_method(name, _call_direct)


def _direct_proxy(name, exposed, bases=(), extra=None):
    namespace = {name_: _direct(name_) for name_ in exposed}
    namespace.update({"_exposed_": tuple(exposed), "_local": None}, **(extra or {}))
    return type(name, bases + (BaseProxy,), namespace)


def _acquire(self, blocking=True, timeout=None):
    args = (blocking,) if timeout is None else (blocking, timeout)
    return _direct("acquire")(self, *args)


class ReleaseError(ValueError, RuntimeError):
    """Releasing a lock not held: a ValueError as multiprocessing's locks raise, and a
    RuntimeError as the threading locks behind the standard library's manager raise."""


def _release(self):
    try:
        return _direct("release")(self)
    except (ValueError, AssertionError) as exc:
        if isinstance(exc, RuntimeError):
            raise
        raise ReleaseError(str(exc)) from None


AcquirerProxy = _direct_proxy("AcquirerProxy", ("acquire", "release"), extra={
    "acquire": _acquire,
    "release": _release,
    "__enter__": lambda self: _direct("acquire")(self),
    "__exit__": lambda self, *exc_info: _release(self),
})


def _wait_for(self, predicate, timeout=None):
    local = self._fast()
    if local is not False:
        return local.wait_for(predicate, timeout)
    result = predicate()
    if result:
        return result
    import time
    endtime = None if timeout is None else time.monotonic() + timeout
    waittime = timeout
    while not result:
        if endtime is not None:
            waittime = endtime - time.monotonic()
            if waittime <= 0:
                break
        self.wait(waittime)
        result = predicate()
    return result


ConditionProxy = _direct_proxy(
    "ConditionProxy", ("acquire", "release", "wait", "notify", "notify_all"), (AcquirerProxy,),
    extra={"wait_for": _wait_for, "acquire": _acquire, "release": _release})

EventProxy = _direct_proxy("EventProxy", ("is_set", "set", "clear", "wait"))


def _attribute(name):
    def get(self):
        local = self._fast()
        if local is False:
            return self._callmethod("__getattribute__", (name,))
        return getattr(local, name)
    return property(get)


BarrierProxy = _direct_proxy("BarrierProxy", ("wait", "abort", "reset"), extra={
    "_exposed_": ("__getattribute__", "wait", "abort", "reset"),
    "parties": _attribute("parties"), "n_waiting": _attribute("n_waiting"),
    "broken": _attribute("broken")})

QUEUE_METHODS = ("empty", "full", "get", "get_nowait", "join", "put", "put_nowait", "qsize",
                 "task_done")
QueueProxy = _direct_proxy("QueueProxy", QUEUE_METHODS)


# --- remote-only proxies ----------------------------------------------------------------------

class IteratorProxy(BaseProxy):
    _exposed_ = ("__next__", "send", "throw", "close")

    def __iter__(self):
        return self

    def __next__(self, *args):
        return self._callmethod("__next__", args)

    def send(self, *args):
        return self._callmethod("send", args)

    def throw(self, *args):
        return self._callmethod("throw", args)

    def close(self, *args):
        return self._callmethod("close", args)


BasePoolProxy = MakeProxyType("PoolProxy", (
    "apply", "apply_async", "close", "imap", "imap_unordered", "join", "map", "map_async",
    "starmap", "starmap_async", "terminate"))
BasePoolProxy._method_to_typeid_ = {
    "apply_async": "AsyncResult", "map_async": "AsyncResult", "starmap_async": "AsyncResult",
    "imap": "Iterator", "imap_unordered": "Iterator"}


class PoolProxy(BasePoolProxy):
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.terminate()


__all__ += ["Token"]
