"""shmproc.managers: the API, security by default, failures, proxies across processes."""
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing import managers as std_managers

import pytest
import support_managers

import shmproc
from shmproc import managers
from shmproc.manager_transport import HANDSHAKE_DEADLINE

START_METHODS = ("fork", "spawn")
HERE = os.path.dirname(__file__)


@pytest.fixture
def manager():
    with shmproc.Manager() as m:
        yield m


def wait_until(predicate, timeout):
    """A bounded wait for a condition the code promises within `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- the API ------------------------------------------------------------------------------------

def test_manager_is_shmprocs_syncmanager(manager):
    assert isinstance(manager, managers.SyncManager)
    assert isinstance(manager.address, str)


def test_dict_list_namespace_value_array(manager):
    d = manager.dict(a=1)
    d["b"] = [1, 2]
    d.update({"c": 3}, e=5)
    assert d.copy() == {"a": 1, "b": [1, 2], "c": 3, "e": 5}
    assert sorted(d.keys()) == ["a", "b", "c", "e"] and len(d) == 4 and "a" in d
    assert d.pop("e") == 5 and d.setdefault("f", 6) == 6 and d.get("zz", 7) == 7
    with pytest.raises(KeyError):
        d["nope"]
    got = d["b"]
    got.append(3)                      # a copy, as from any manager
    assert d["b"] == [1, 2]
    lst = manager.list([3, 1, 2])
    lst.sort()
    lst += [4]
    lst.append(5)
    assert lst[:] == [1, 2, 3, 4, 5] and lst.index(3) == 2 and lst.pop() == 5
    ns = manager.Namespace(x=1)
    ns.y = "two"
    del ns.x
    assert ns.y == "two" and not hasattr(ns, "x")
    v = manager.Value("i", 3)
    v.value += 1
    assert v.get() == 4
    a = manager.Array("d", [0.5, 1.5])
    a[0] = 2.5
    assert list(a[:]) == [2.5, 1.5] and len(a) == 2


def test_synchronisation_types(manager):
    q = manager.Queue()
    q.put(1)
    assert q.qsize() == 1 and q.get(timeout=5) == 1 and q.empty()
    jq = manager.JoinableQueue()
    jq.put("task")
    jq.get(timeout=5)
    jq.task_done()
    jq.join()
    for factory in (manager.Lock, manager.RLock, manager.Semaphore, manager.BoundedSemaphore):
        with factory() as acquired:
            assert acquired
    lock = manager.Lock()
    with pytest.raises(RuntimeError):
        lock.release()
    cond = manager.Condition(manager.Lock())
    with cond:
        assert cond.wait(0.01) is False
    event = manager.Event()
    event.set()
    assert event.is_set() and event.wait(1)
    barrier = manager.Barrier(1)
    assert barrier.parties == 1 and barrier.wait(5) == 0 and not barrier.broken


def test_pool(manager):
    with manager.Pool(2) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]
        assert pool.apply_async(pow, (2, 5)).get(timeout=30) == 32


def test_nested_proxies(manager):
    outer = manager.list()
    inner = manager.dict(k="v")
    outer.append(inner)
    again = outer[0]
    again["k2"] = "v2"
    assert inner.copy() == {"k": "v", "k2": "v2"}


def test_custom_type_get_server_connect_and_unexposed_method():
    key = os.urandom(32)
    server_manager = support_managers.CustomKeyManager(address=("127.0.0.1", 0), authkey=key)
    server = server_manager.get_server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = support_managers.CustomKeyManager(address=server.address, authkey=key)
        client.connect()
        counter = client.Counter()
        assert counter.add(2) == 2 and counter.add(3) == 5
        with pytest.raises(managers.RemoteError):
            counter._callmethod("_hidden")
        with pytest.raises(AttributeError):
            counter._hidden
    finally:
        server.stop_event.set()
        thread.join(10)


def test_register_rejects_bad_input():
    class M(managers.BaseManager):
        pass
    with pytest.raises(TypeError, match="not callable"):
        M.register("thing", 42)
    M.register("thing", dict)
    with pytest.raises(ValueError, match="already registered"):
        M.register("thing", list)


def test_connecting_to_nothing_fails_clearly(tmp_path):
    m = managers.BaseManager(address=str(tmp_path / "no-such-socket"), authkey=os.urandom(32))
    with pytest.raises(OSError):
        m.connect()


def test_shared_memory_manager():
    with managers.SharedMemoryManager() as smm:
        block = smm.SharedMemory(64)
        block.buf[0] = 7
        shareable = smm.ShareableList([1, "two"])
        assert shareable[1] == "two" and block.buf[0] == 7
        names = [block.name, shareable.shm.name]
        block.close()
        shareable.shm.close()
    for name in names:
        assert not os.path.exists(f"/dev/shm/{name}")


# --- secure by default ------------------------------------------------------------------------

def test_local_manager_socket_is_private(manager):
    directory = os.path.dirname(manager.address)
    assert os.stat(directory).st_mode & 0o777 == 0o700
    assert len(bytes(manager._authkey)) >= 32


def test_manager_directory_is_removed_at_shutdown():
    m = shmproc.Manager()
    directory = os.path.dirname(m.address)
    m.shutdown()
    assert not os.path.exists(directory)


@pytest.mark.parametrize("host", ["0.0.0.0", ""])
def test_non_loopback_needs_an_explicit_long_key(host):
    with pytest.raises(ValueError, match="reachable from other machines"):
        managers.SyncManager(address=(host, 0)).get_server()
    with pytest.raises(ValueError, match="at least 16"):
        managers.SyncManager(address=(host, 0), authkey=b"abracadabra").get_server()


class _Refusals(logging.Handler):
    def __init__(self):
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record):
        if "refused" in record.getMessage():
            self.seen.set()


@pytest.fixture
def served():
    """A SyncManager server running in a thread of this process, on loopback TCP."""
    key = os.urandom(32)
    server = managers.SyncManager(address=("127.0.0.1", 0), authkey=key).get_server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    logger = shmproc.get_logger()
    handler, level = _Refusals(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield server, key, handler
    logger.removeHandler(handler)
    logger.setLevel(level)
    server.stop_event.set()
    thread.join(10)
    from multiprocessing import process
    process.current_process()._manager_server = None


def test_wrong_key_fails_on_both_sides(served):
    server, key, refusals = served
    for client_manager in (managers.SyncManager, std_managers.SyncManager):
        with pytest.raises(AuthenticationError):
            client_manager(address=server.address, authkey=os.urandom(32)).connect()
        assert refusals.seen.wait(1)
        refusals.seen.clear()


def _raw_connection(address):
    sock = socket.create_connection(address, timeout=HANDSHAKE_DEADLINE * 3)
    size, = struct.unpack("!i", sock.recv(4))
    challenge = b""
    while len(challenge) < size:
        challenge += sock.recv(size - len(challenge))
    assert challenge.startswith(b"#CHALLENGE#")
    return sock


class _WritesMarker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_before_authentication_is_never_loaded(served, tmp_path):
    server, key, refusals = served
    marker = tmp_path / "marker"
    payload = pickle.dumps((None, "create", ("dict",), {"evil": _WritesMarker(str(marker))}))
    padded = pickle.dumps((None, "create", ("dict",), {"evil": _WritesMarker(str(marker)),
                                                        "padding": "x" * 4096}))
    assert len(payload) <= 256 < len(padded)
    for frame in (payload, padded):            # within and beyond the first frame's bound
        sock = _raw_connection(server.address)
        sock.sendall(struct.pack("!i", len(frame)) + frame)
        assert refusals.seen.wait(5)
        refusals.seen.clear()
        sock.close()
    assert not marker.exists()
    client = managers.SyncManager(address=server.address, authkey=key)
    client.connect()
    assert client.dict(a=1).copy() == {"a": 1}


@pytest.mark.timeout(30)
def test_idle_client_is_dropped_after_the_deadline(served):
    server, key, refusals = served
    sock = _raw_connection(server.address)
    assert sock.recv(1) == b""              # EOF: the server hung up on us
    assert refusals.seen.wait(5)
    sock.close()


def test_tls(tmp_path):
    ssl = pytest.importorskip("ssl")
    cert, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(keyfile), "-out", str(cert)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip("no openssl to make a certificate")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, keyfile)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.load_verify_locations(cert)
    key = os.urandom(32)
    server = managers.SyncManager(address=("127.0.0.1", 0), authkey=key,
                                  ssl_context=server_context).get_server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = managers.SyncManager(address=server.address, authkey=key,
                                      ssl_context=client_context)
        client.connect()
        d = client.dict(a=1)
        d["b"] = 2
        assert d.copy() == {"a": 1, "b": 2}
        with pytest.raises((AuthenticationError, OSError, EOFError)):
            managers.SyncManager(address=server.address, authkey=key).connect()   # not TLS
    finally:
        server.stop_event.set()
        thread.join(10)
        from multiprocessing import process
        process.current_process()._manager_server = None


# --- wire compatibility ---------------------------------------------------------------------------

def test_standard_library_client_uses_a_shmproc_manager():
    key = os.urandom(32)
    with managers.SyncManager(address=("127.0.0.1", 0), authkey=key) as ours:
        theirs = std_managers.SyncManager(address=ours.address, authkey=key)
        theirs.connect()
        d = theirs.dict(a=1)
        d["b"] = 2
        assert d.copy() == {"a": 1, "b": 2}
        lst = theirs.list([1])
        lst.append(2)
        ns = theirs.Namespace(x=1)
        ns.y = 2
        q = theirs.Queue()
        q.put("item")
        assert lst[:] == [1, 2] and (ns.x, ns.y) == (1, 2) and q.get(timeout=5) == "item"
        lock = theirs.Lock()
        assert lock.acquire() and lock.release() is None


def test_shmproc_client_uses_a_standard_library_manager():
    key = os.urandom(32)
    with std_managers.SyncManager(address=("127.0.0.1", 0), authkey=key) as theirs:
        ours = managers.SyncManager(address=theirs.address, authkey=key)
        ours.connect()
        d = ours.dict()
        d["k"] = "v"
        ns = ours.Namespace()
        ns.a = 3
        q = ours.Queue()
        q.put(1)
        assert d.copy() == {"k": "v"} and ns.a == 3 and q.get(timeout=5) == 1
        assert d._local is False                       # no fast path there: plain proxies


# --- across processes ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", START_METHODS)
def test_children_share_the_objects(manager, method):
    ctx = shmproc.get_context(method)
    d, lst, ns, q = manager.dict(), manager.list(), manager.Namespace(), manager.Queue()
    children = [ctx.Process(target=support_managers.fill, args=(d, lst, ns, q, k * 100, 50))
                for k in range(2)]
    for child in children:
        child.start()
    reports = {q.get(timeout=60) for _ in children}
    for child in children:
        child.join(60)
    assert {pid for _, pid in reports} == {child.pid for child in children}
    assert d.copy() == {i: i * i for k in range(2) for i in range(k * 100, k * 100 + 50)}
    assert sorted(lst[:]) == sorted(d.keys())
    assert ns.done_0 and ns.done_100


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_proxy_of_a_custom_key_manager_travels(method):
    """CPython gh-139801: a proxy of a manager with its own key, passed to a spawn or forkserver
    child, connects there with that key."""
    ctx = shmproc.get_context(method)
    key = os.urandom(32)
    with managers.SyncManager(authkey=key, ctx=ctx) as m:
        d = m.dict(parent=os.getpid())
        q = m.Queue()
        child = ctx.Process(target=support_managers.use_proxy, args=(d, q))
        child.start()
        assert q.get(timeout=60) == os.getpid()
        child.join(60)
        assert child.exitcode == 0 and d["child"] == child.pid


@pytest.mark.parametrize("method", START_METHODS)
def test_one_proxy_from_two_processes_at_once(manager, method):
    """CPython gh-101320: the same proxy object used by a parent and its child concurrently."""
    ctx = shmproc.get_context(method)
    lst = manager.list()
    counter, lock = manager.dict(n=0), manager.Lock()
    child = ctx.Process(target=support_managers.append_many, args=(lst, 2000))
    adder = ctx.Process(target=support_managers.add_many, args=(counter, lock, 300))
    child.start()
    adder.start()
    support_managers.append_many(lst, 2000)
    support_managers.add_many(counter, lock, 300)
    child.join(60)
    adder.join(60)
    assert len(lst) == 4000 and sorted(lst[:]) == sorted(list(range(2000)) * 2)
    assert counter["n"] == 600


@pytest.mark.parametrize("method", START_METHODS)
def test_remote_proxies_from_two_processes(method):
    key = os.urandom(32)
    ctx = shmproc.get_context(method)
    with support_managers.CustomKeyManager(address=("127.0.0.1", 0), authkey=key, ctx=ctx) as m:
        counter = m.Counter()
        child = ctx.Process(target=support_managers.remote_add, args=(counter, 200))
        child.start()
        support_managers.remote_add(counter, 200)
        child.join(60)
        assert counter.add(0) == 400


# --- failures -----------------------------------------------------------------------------------

def test_every_proxy_fails_once_the_manager_is_killed():
    m = shmproc.Manager()
    d, lst, ns, q, lock = m.dict(a=1), m.list(), m.Namespace(x=1), m.Queue(), m.Lock()
    pool = m.Pool(1)
    assert d["a"] == 1 and ns.x == 1 and lock.acquire(False)
    lock.release()
    os.kill(m._process.pid, signal.SIGKILL)
    m._process.join(10)
    calls = [lambda: d["a"], lambda: d.__setitem__("b", 2), lambda: lst.append(1),
             lambda: ns.x, lambda: q.put(1), lambda: lock.acquire(False),
             lambda: pool.apply(abs, (-1,))]

    def all_fail():
        for call in calls:
            try:
                call()
            except (EOFError, ConnectionError):
                continue
            return False
        return True
    assert wait_until(all_fail, 1.0)
    m.shutdown()


def test_a_lock_whose_holder_died_does_not_wedge_the_others(manager):
    lock = manager.Lock()
    child = shmproc.get_context("fork").Process(target=support_managers.grab_lock_and_exit,
                                                args=(lock,))
    child.start()
    child.join(30)
    with pytest.raises(shmproc.OwnerDiedError):
        lock.acquire(timeout=10)
    assert lock.acquire(timeout=10)
    lock.release()


@pytest.mark.timeout(60)
def test_killed_parent_takes_its_manager_and_socket_with_it(tmp_path):
    ready = str(tmp_path / "ready")
    parent = subprocess.Popen([sys.executable, os.path.join(HERE, "support_managers.py"),
                               "orphan", ready], cwd=os.path.dirname(HERE))
    try:
        assert wait_until(lambda: os.path.exists(ready), 30)
        with open(ready) as report:
            pid, address = report.read().split(" ", 1)
        assert os.path.exists(address)
        parent.kill()
        parent.wait(10)

        def gone(pid=int(pid)):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return open(f"/proc/{pid}/stat").read().split()[2] == "Z"
        assert wait_until(gone, 1.0)
        assert wait_until(lambda: not os.path.exists(os.path.dirname(address)), 1.0)
    finally:
        parent.kill()
        parent.wait()


# --- CPython's own manager tests --------------------------------------------------------------

@pytest.mark.timeout(400)
@pytest.mark.parametrize("method", START_METHODS)
def test_cpython_manager_tests(method):
    env = dict(os.environ, SHMPROC_START_METHOD=method, SHMPROC_TEST_TIMEOUT="300")
    run = subprocess.run([sys.executable, "-m", "tests.support_managers_cpython"],
                         cwd=os.path.dirname(HERE), env=env, capture_output=True, text=True,
                         timeout=360, check=False)
    assert run.returncode == 0, run.stderr[-5000:]
    # unittest's verdict (a child's late message to stderr may follow it).
    assert any(line.startswith("OK") for line in run.stderr.splitlines()), run.stderr[-5000:]
