"""Start a child with os.fork(): shmproc's own, leaner than multiprocessing.popen_fork.

Most of a fork's cost here is page faults: after fork() every page either process writes to is
copied (or at least trapped) first, a few microseconds each on these VMs, and Python writes to
every object it touches. So the path does as little as it can on both sides (docs/process.md):
- no pipes: the child's sentinel is a pidfd (readable once the child has exited, usable with
  multiprocessing.connection.wait and select), opened when first asked for, and the child's
  sentinel for its parent is this process's own pidfd, opened once and inherited by every child;
- no util.Finalize per child: the pidfd is closed by close() or when the Popen is collected;
- the child's new process state is built once in the parent (process.ForkInheritance);
- exit statuses are read without reaping (waitid WNOWAIT), published, then reaped, so threads
  that poll the same child cannot lose its status; signals go through the pidfd when it is open,
  else to the pid, which cannot be recycled while the child is unreaped.
Where pidfds are missing (kernels before 5.3, some sandboxes) it falls back to multiprocessing's
pipes.
"""
import os
import select
import signal
import sys

from shmproc import _compat, context, parent_death, process

__all__ = ["Popen"]


def _have_pidfd():
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


HAVE_PIDFD = _have_pidfd()


class Popen:
    method = "fork"
    __slots__ = ("returncode", "pid", "_sentinel", "_pipe_fds", "_owner_pid")

    def __init__(self, process_obj):
        self.returncode = None
        self._sentinel = None
        self._pipe_fds: tuple[int, ...] = ()
        self._owner_pid = os.getpid()
        # Buffered output not flushed before fork would be written twice, once by each process.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (AttributeError, ValueError):
            _compat.flush_std_streams()
        # The common case, prctl from the main thread, is armed below with what is at hand: the
        # child has fewer objects to touch (each a copied page) than through parent_death.arm().
        death, prctl = parent_death.plan_fork(process_obj)
        process_obj._parent_death = death
        inherited = (process.inheritance_for_fork(context._chosen_start_method()) if HAVE_PIDFD
                     else None)
        if inherited is None or inherited.sentinel is None:
            self._launch_with_pipes(process_obj)
            return
        parent_pid = self._owner_pid
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if prctl is None:
                    parent_death.arm(process_obj, death, inherited.sentinel)
                elif prctl[0](*prctl[1]) != 0 or os.getppid() != parent_pid:
                    # Failed, or the parent died before the call (we are orphaned already).
                    parent_death.arm(process_obj, death, inherited.sentinel)
                code = process_obj._bootstrap(inherited.sentinel, inherited)
            finally:
                os._exit(code)
        # Nothing more here: until this process sleeps in join(), whatever it does delays the
        # child, which starts on this CPU (docs/process.md). The sentinel is opened on demand.
        self.pid = pid

    @property
    def sentinel(self):
        """A descriptor that is readable once the child has ended."""
        if self._sentinel is None:
            sentinel = None
            if self.returncode is None:
                # Not reaped yet, so the pid is still our child's.
                try:
                    sentinel = os.pidfd_open(self.pid)
                except ProcessLookupError:
                    pass   # reaped behind our back (SIGCHLD ignored, os.wait() in user code)
            if sentinel is None:
                # The child has ended: a descriptor that is always readable, as its pidfd would be.
                sentinel = os.eventfd(1)
            self._sentinel = sentinel
        return self._sentinel

    def _launch_with_pipes(self, process_obj):
        parent_r, child_w = os.pipe()
        child_r, parent_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                os.close(parent_r)
                os.close(parent_w)
                code = process_obj._bootstrap(child_r)   # arms the parent-death signal too
            finally:
                os._exit(code)
        os.close(child_w)
        os.close(child_r)
        self._sentinel = parent_r
        self._pipe_fds = (parent_w,)

    def duplicate_for_child(self, fd):
        return fd

    def poll(self, flag=os.WNOHANG):
        if self.returncode is None:
            # Several threads may poll one child (join() in one, active_children() or another
            # start() in others): a plain waitpid() lets one of them reap the status while the
            # others get ECHILD and report None (multiprocessing's race). So the status is read
            # without reaping (WNOWAIT), published, and only then reaped: a thread that finds the
            # child gone also finds its returncode.
            try:
                ended = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT | flag)
            except ChildProcessError:
                # Reaped by another thread (returncode is set), by the system (SIGCHLD ignored)
                # or by os.wait() in user code (no status, as with multiprocessing).
                return self.returncode
            except OSError:
                return None     # e.g. asked from a process that is not the parent
            if ended is None:
                return None     # WNOHANG, still running
            if ended.si_code == os.CLD_EXITED:
                self.returncode = ended.si_status
            else:
                self.returncode = -ended.si_status   # killed or dumped by a signal
            try:
                os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            if timeout is None:
                return self.poll(0)
            poller = select.poll()
            poller.register(self.sentinel, select.POLLIN)
            if not poller.poll(max(0, int(timeout * 1000 + 0.999))):
                return None
            return self.poll(os.WNOHANG if timeout == 0.0 else 0)
        return self.returncode

    def _send_signal(self, sig):
        if self.returncode is not None:
            return
        try:
            if self._sentinel is not None and not self._pipe_fds:
                signal.pidfd_send_signal(self._sentinel, sig)
            else:
                # Still unreaped (returncode is None), so the pid cannot name another process.
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        except OSError:
            if self.wait(timeout=0.1) is None:
                raise

    def terminate(self):
        self._send_signal(signal.SIGTERM)

    def kill(self):
        self._send_signal(signal.SIGKILL)

    def close(self):
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            os.close(sentinel)
        if self._pipe_fds:
            fds, self._pipe_fds = self._pipe_fds, ()
            for fd in fds:
                os.close(fd)

    def __del__(self):
        # A forked child holds copies of its siblings' Popen objects: their descriptors are the
        # parent's business, and closing them by number later could hit a reused descriptor.
        if self._sentinel is not None and self._owner_pid == os.getpid():
            try:
                self.close()
            except OSError:
                pass
