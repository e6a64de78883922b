"""What a SyncManager's server holds for each shared type, and how shmproc's proxies reach it.

Two kinds of referent:

* **Replicated** (dict, list, Namespace, Value, Array): the state lives in the server as a replica
  of a shared-memory log (manager_replica); standard-library proxies call the methods below over the
  socket, shmproc's proxies on this machine attach to the log and work on their own replica.
* **Direct** (Queue, JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event,
  Barrier): the referent is a shmproc shared-memory object; standard-library proxies call it
  through the server, shmproc's proxies on this machine get the object itself and call it with no
  server in the way.

``READERS`` and ``WRITERS`` name, per replicated type, the methods that leave the state alone and
those that change it (and so go through the log); the proxies use the same tables.
"""
import array
import os
import pickle
import threading
import weakref
from multiprocessing.managers import Namespace, Value

from shmproc.manager_replica import Log, Replica, private_copy

__all__ = ["READERS", "WRITERS", "Direct", "Replicated", "make_array", "make_condition",
           "make_dict", "make_list", "make_namespace", "make_value"]

READERS = {
    "dict": ("__contains__", "__getitem__", "__len__", "copy", "get", "items", "keys", "values",
             "__iter__"),
    "list": ("__add__", "__contains__", "__getitem__", "__len__", "__mul__", "__reversed__",
             "__rmul__", "count", "index"),
    "Namespace": ("__getattribute__",),
    "Value": ("get",),
    "Array": ("__len__", "__getitem__"),
}
WRITERS = {
    "dict": ("__delitem__", "__setitem__", "clear", "pop", "popitem", "setdefault", "update"),
    "list": ("__delitem__", "__setitem__", "append", "extend", "insert", "pop", "remove",
             "reverse", "sort", "__imul__"),
    "Namespace": ("__setattr__", "__delattr__"),
    "Value": ("set",),
    "Array": ("__setitem__",),
}

# Writes that return None and cannot fail once their arguments are checked (blind_check): the
# writer logs them without first applying what others logged (manager_replica.Replica.write_blind).
BLIND = {"dict": "__setitem__", "list": "append", "Namespace": "__setattr__", "Value": "set"}


def blind_check(typeid, args):
    """Raise here, in the caller, what the blind write would raise when applied."""
    if typeid == "dict":
        hash(args[0])
    elif typeid == "Namespace" and type(args[0]) is not str:
        raise TypeError(f"attribute name must be string, not '{type(args[0]).__name__}'")


# Reads whose result the standard library's server turns into a list (views and iterators do not
# pickle): the replica does the same before copying.
_AS_LIST = {"keys", "values", "items", "__iter__", "__reversed__"}


def read_method(name):
    if name in _AS_LIST:
        def method(state, *args):
            return list(getattr(state, name)(*args))
    else:
        def method(state, *args):
            return getattr(state, name)(*args)
    method.__name__ = name
    return method


class _Follower:
    """A thread of the manager process that applies the logs as clients fill them, woken by a
    shared semaphore (the doorbell) that a client releases when a log passes a quarter of its ring
    beyond what the server has applied: writers then seldom wait for the server."""

    def __init__(self):
        from shmproc.synchronize import Semaphore
        self.doorbell = Semaphore(0)
        self.replicated = weakref.WeakSet()
        self.pid = os.getpid()
        threading.Thread(target=self._follow, name="shmproc-manager-follower", daemon=True).start()

    def _follow(self):
        while True:
            self.doorbell.acquire()
            for obj in list(self.replicated):
                log = obj.log
                if log.end.load() != log.server_pos.load():
                    obj.replica.server_catch_up()


_follower = None


def _the_follower():
    global _follower
    if _follower is None or _follower.pid != os.getpid():
        _follower = _Follower()
    return _follower


class Replicated:
    """The server's side of a replicated object."""

    def __init__(self, typeid, state):
        follower = _the_follower()
        self.typeid = typeid
        self.log = Log(doorbell=follower.doorbell)
        self.replica = Replica(self.log, 0, state, None, None, is_server=True)
        follower.replicated.add(self)

    def _shmproc_attach(self):
        position, blob = self.replica.server_snapshot()
        return ("replica", self.log, position, blob)

    def _shmproc_snapshot(self, client_holds_lock):
        return self.replica.server_snapshot(client_holds_lock)

    def _shmproc_catch_up(self, payload=None):
        self.replica.server_catch_up(payload)

    def _shmproc_value(self):
        return self.replica.read_with(lambda state: pickle.loads(pickle.dumps(state)))

    def __str__(self):
        return str(self._shmproc_value())

    def __repr__(self):
        return repr(self._shmproc_value())


def _server_reader(name):
    function = read_method(name)

    def method(self, *args):
        return private_copy(self.replica.read_with(lambda state: function(state, *args)))
    method.__name__ = "op" + name
    return method


def _server_writer(name):
    def method(self, *args, **kwds):
        return self.replica.write(name, args, kwds)
    method.__name__ = "op" + name
    return method


def _replicated_class(typeid):
    """The server-side class for typeid: each exposed method under "op<name>", and the table the
    server dispatches through (so that __getattribute__ and __setattr__ can be served methods)."""
    dispatch: dict[str, str] = {}
    namespace: dict[str, object] = {"_shmproc_dispatch": dispatch}
    for name in READERS[typeid]:
        namespace["op" + name] = _server_reader(name)
        dispatch[name] = "op" + name
    for name in WRITERS[typeid]:
        namespace["op" + name] = _server_writer(name)
        dispatch[name] = "op" + name
    if typeid == "dict":
        dispatch["__iter__"] = "op_iter"
        namespace["op_iter"] = lambda self: iter(self.replica.read_with(list))
    return type(f"Replicated{typeid}", (Replicated,), namespace)


_classes = {typeid: _replicated_class(typeid) for typeid in READERS}


def make_dict(*args, **kwds):
    return _classes["dict"]("dict", dict(*args, **kwds))


def make_list(*args):
    return _classes["list"]("list", list(*args))


def make_namespace(**kwds):
    return _classes["Namespace"]("Namespace", Namespace(**kwds))


def make_value(typecode, value, lock=True):
    return _classes["Value"]("Value", Value(typecode, value, lock))


def make_array(typecode, sequence, lock=True):
    return _classes["Array"]("Array", array.array(typecode, sequence))


class Direct:
    """The server's side of a shmproc shared object: calls pass straight to it."""

    _shmproc_dispatch = {"__getattribute__": "attribute"}

    def __init__(self, obj):
        self.obj = obj

    def __getattr__(self, name):
        return getattr(self.obj, name)

    def attribute(self, name):
        return getattr(self.obj, name)

    def _shmproc_attach(self):
        return ("direct", self.obj)

    def _shmproc_value(self):
        return self.obj

    def __repr__(self):
        return repr(self.obj)


def direct_factory(make):
    def factory(*args, **kwds):
        return Direct(make(*args, **kwds))
    return factory


def make_condition(lock=None):
    """A shmproc Condition; a lock given as a proxy of this manager is replaced by its referent."""
    from shmproc.synchronize import Condition
    if lock is not None:
        lock = _referent(lock)
    return Direct(Condition(lock))


def _referent(proxy):
    """In the server: the shared object behind one of its own proxies."""
    from multiprocessing import process
    server = getattr(process.current_process(), "_manager_server", None)
    token = getattr(proxy, "_token", None)
    if server is None or token is None:
        return proxy
    entry = server.id_to_obj.get(token.id) or server.id_to_local_proxy_obj.get(token.id)
    obj = entry[0] if entry else proxy
    return obj.obj if isinstance(obj, Direct) else obj
