"""The keeper: holds the descriptors of handles in flight, so that a handle outlives its sender.

A shmproc object pickles as a handle naming its sender's descriptor. When the handle goes into a
shmproc queue or pipe, the sender also passes the descriptor itself to the keeper over a Unix
socket (SCM_RIGHTS) before the message is published: from then on the kernel keeps the file alive
in flight, then in the keeper, even if the sender is SIGKILLed at once. The receiver opens the
sender's descriptor through /proc if it can, else asks the keeper for its copy, and then tells the
keeper the handle was received, which closes the copy. A handle that is never received is tied to
the ring it travels in: the keeper holds that ring's notify write end (a pipe's, or a duplex Pipe's
socket) and closes everything sent through the ring once no process can read from it any more
(EPOLLERR on a pipe: no read end is left; EPOLLHUP on a socket: its peer is closed everywhere).

There is one keeper per process tree, started on first use by whichever process needs it, and it
exits when the tree's root process does (a pidfd), dropping what it holds. It listens on an
abstract Unix socket whose random name the root puts in $SHMPROC_KEEPER, so every process of the
tree finds it whatever its start method; it accepts only processes of its own user (SO_PEERCRED),
so nothing is reachable by other users. The mechanism and its invariants: docs/internals/handles.md.

This file runs as a script (`python -I -S keeper.py NAME ROOT_PID ROOT_START`), importing only the
standard library, so that starting it costs a bare interpreter's start-up.
"""
import array
import os
import select
import socket
import struct
import sys

# Message kinds (one message per sendmsg on a SOCK_SEQPACKET connection):
#   DEPOSIT  b"D" pid:u32 ring:24s count:u32 tokens:count*u64, SCM_RIGHTS: count descriptors, then
#            the ring's notify write end if ring is not all zeros, held while something sent through
#            the ring is held (a Pipe: holding its write end keeps its reader from seeing EOF)
#            b"P" the same, the write end held until no process can read the ring (a queue's)
#            b"d" the same without the write end: the keeper holds it already (after a b"P")
#   RELEASE  b"R" pid:u32 count:u32 tokens:count*u64            (received through /proc)
#   FETCH    b"F" pid:u32 token:u64  -> b"K" + SCM_RIGHTS [fd], or b"N" when the keeper has none
#   SYNC     b"S" pid:u32 token:u64  -> b"S" once every earlier message of the connection is done
DEPOSIT, RELEASE, FETCH, GIVEN, NONE, SYNC = b"D", b"R", b"F", b"K", b"N", b"S"
DEPOSIT_WATCHING, DEPOSIT_WATCHED = b"P", b"d"
HEADER = struct.Struct("=cI24sI")           # DEPOSIT and RELEASE (RELEASE's ring is unused)
FETCH_REQUEST = struct.Struct("=cIQ")     # FETCH and SYNC
MAX_FDS = 253                               # SCM_MAX_FD: descriptors per message
MAX_MESSAGE = HEADER.size + 8 * MAX_FDS
NO_RING = bytes(24)
TICK = 0.002                               # seconds between reads of a busy connection
RECEIVED_EARLY_KEPT = 1 << 16


def socket_address(name):
    return b"\0shmproc-keeper-" + name.encode()


def start_time(pid):
    """A process's start time in clock ticks (field 22 of /proc/<pid>/stat), or None if it is gone:
    with the pid, it names one process, never a later one that reuses the pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[19])


class Keeper:
    def __init__(self, listener, root_pidfd):
        self.listener = listener
        self.root_pidfd = root_pidfd
        self.uid = os.getuid()
        self.poller = select.epoll()
        self.connections = {}           # fd -> socket
        self.busy = set()               # connections read every TICK, not armed in epoll
        self.received_early = {}        # keys released before their deposit was read
        self.draining = False
        self.held = {}                  # (pid, token) -> (fd, ring)
        self.rings = {}                 # ring -> [write end, keys held for it]
        self.ring_of_fd = {}            # write end -> ring
        self.poller.register(listener.fileno(), select.EPOLLIN)
        self.poller.register(root_pidfd, select.EPOLLIN)

    def run(self):
        # A connection wakes the keeper once (EPOLLONESHOT); while it keeps sending, the keeper
        # reads it every TICK instead of being woken by each message, which would cost the sender
        # a wake-up (~5-8 us here) per handle. It is armed again after a tick with nothing new.
        # FETCH and SYNC come on new connections, which the listener reports at once.
        while True:
            for fd, _ in self.poller.poll(TICK if self.busy else -1):
                if fd == self.root_pidfd:
                    return                      # the tree is gone: exiting closes everything
                if fd == self.listener.fileno():
                    self.accept_all()
                elif fd in self.connections:
                    self.busy.add(fd)
                elif fd in self.ring_of_fd:
                    self.drop_ring(self.ring_of_fd[fd])
            for fd in list(self.busy):
                connection = self.connections.get(fd)
                if connection is None:
                    self.busy.discard(fd)
                elif not self.serve(connection):
                    self.busy.discard(fd)
                    if fd in self.connections:
                        self.poller.modify(fd, select.EPOLLIN | select.EPOLLONESHOT)

    def accept_all(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except BlockingIOError:
                return
            credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                struct.calcsize("3i"))
            _, uid, _ = struct.unpack("3i", credentials)
            if uid != self.uid:
                connection.close()
                continue
            connection.setblocking(False)
            self.connections[connection.fileno()] = connection
            self.poller.register(connection.fileno(), select.EPOLLIN | select.EPOLLONESHOT)

    def drain(self):
        """Read every message already sent to the keeper. A receiver's FETCH comes only after its
        sender's DEPOSIT returned, but the deposit came on another connection (maybe not yet
        accepted), which the keeper may not have read yet. Not re-entered: a FETCH read while
        draining is answered from what the outer drain has read so far."""
        if self.draining:
            return
        self.draining = True
        try:
            self.accept_all()
            for connection in list(self.connections.values()):
                self.serve(connection)
        finally:
            self.draining = False

    def serve(self, connection):
        """Act on every message waiting on a connection; how many there were."""
        served = 0
        while True:
            try:
                message, ancillary, _, _ = connection.recvmsg(
                    MAX_MESSAGE, socket.CMSG_SPACE(4 * (MAX_FDS + 1)), socket.MSG_CMSG_CLOEXEC)
            except BlockingIOError:
                return served
            except OSError:
                message, ancillary = b"", []
            served += 1
            fds: list[int] = []
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(array.array("i", data[:len(data) - len(data) % 4]))
            if not message:
                for fd in fds:
                    os.close(fd)
                self.poller.unregister(connection.fileno())
                del self.connections[connection.fileno()]
                connection.close()
                return served
            try:
                self.handle(connection, message, fds)
            except Exception:
                for fd in fds:                  # a malformed message: keep nothing of it
                    try:
                        os.close(fd)
                    except OSError:
                        pass

    def handle(self, connection, message, fds):
        kind = message[:1]
        if kind == SYNC:
            self.drain()
            connection.send(SYNC)
            return
        if kind == FETCH:
            _, pid, token = FETCH_REQUEST.unpack(message)
            self.answer_fetch(connection, (pid, token))
            return
        _, pid, ring, count = HEADER.unpack_from(message)
        tokens = struct.unpack_from(f"={count}Q", message, HEADER.size)
        if kind == RELEASE:
            for token in tokens:
                self.release((pid, token))
            return
        with_write_end = ring != NO_RING and kind != DEPOSIT_WATCHED
        if kind not in (DEPOSIT, DEPOSIT_WATCHING, DEPOSIT_WATCHED) or len(fds) != count + with_write_end:
            raise ValueError("malformed deposit")
        if with_write_end:
            self.watch_ring(ring, fds.pop(), kind == DEPOSIT_WATCHING)
        elif ring not in self.rings:
            ring = NO_RING                      # not watched (cannot happen): held untied
        for token, fd in zip(tokens, fds):
            key = (pid, token)
            old = self.held.pop(key, None)
            if old is not None:
                os.close(old[0])
            if self.received_early.pop(key, False):
                os.close(fd)                    # its receiver was faster than this message
                continue
            self.held[key] = (fd, ring)
            if ring != NO_RING:
                self.rings[ring][1].add(key)

    def watch_ring(self, ring, write_end, until_gone):
        watched = self.rings.get(ring)
        if watched is not None:
            os.close(write_end)
            watched[2] = watched[2] or until_gone
            return
        self.rings[ring] = [write_end, set(), until_gone]
        self.ring_of_fd[write_end] = ring
        # No event asked for: EPOLLERR (a pipe with no reader left) and EPOLLHUP (a socket whose
        # peer is closed everywhere) are always reported, and nothing else is.
        self.poller.register(write_end, 0)

    def drop_ring(self, ring):
        """No process can read from the ring any more: what travels in it is never received."""
        for key in self.forget_ring(ring):
            fd, _ = self.held.pop(key)
            os.close(fd)

    def forget_ring(self, ring):
        write_end, keys, _ = self.rings.pop(ring)
        del self.ring_of_fd[write_end]
        self.poller.unregister(write_end)
        os.close(write_end)
        return keys

    def take(self, key, drain=True):
        entry = self.held.pop(key, None)
        if entry is None and drain:
            self.drain()
            entry = self.held.pop(key, None)
        if entry is None:
            return None
        fd, ring = entry
        if ring != NO_RING:
            _, keys, until_gone = self.rings[ring]
            keys.discard(key)
            if not keys and not until_gone:
                # Nothing of the ring's is held any more: stop holding its write end, which would
                # keep a Pipe's reader from seeing EOF.
                self.forget_ring(ring)
        return fd

    def release(self, key):
        """A receiver attached the handle itself. A RELEASE may be read before its DEPOSIT (they
        come on different connections): the key is then remembered, and the deposit closed on
        arrival. Keys of handles never deposited (pickled outside a ring) are remembered too, up to
        RECEIVED_EARLY_KEPT of them, oldest forgotten first."""
        fd = self.take(key, drain=False)
        if fd is not None:
            os.close(fd)
            return
        self.received_early[key] = True
        if len(self.received_early) > RECEIVED_EARLY_KEPT:
            del self.received_early[next(iter(self.received_early))]

    def answer_fetch(self, connection, key):
        fd = self.take(key)
        try:
            if fd is None:
                connection.send(NONE)
            else:
                connection.sendmsg([GIVEN], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                              array.array("i", [fd]).tobytes())])
        finally:
            if fd is not None:
                os.close(fd)


def main(name, root_pid, root_start):
    root_pid = int(root_pid)
    try:
        root_pidfd = os.pidfd_open(root_pid)
    except OSError:
        return 0
    if str(start_time(root_pid)) != root_start:
        return 0                        # the root exited and its pid was reused
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        listener.bind(socket_address(name))
    except OSError:
        return 0                        # another process of the tree started the keeper first
    # Leave the process that started us (it waits for this), so the keeper is nobody's child: it
    # lives as long as the root, not as long as the worker that happened to need it first. The
    # keeper itself listens (SO_PEERCRED names the listening process), then lets its parent go.
    ready_read, ready_write = os.pipe()
    if os.fork():
        os.close(ready_write)
        os.read(ready_read, 1)
        os._exit(0)
    os.close(ready_read)
    listener.listen(64)
    listener.setblocking(False)
    os.write(ready_write, b"!")
    os.close(ready_write)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    # Hold as many descriptors as the user may.
    import resource
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    Keeper(listener, root_pidfd).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
