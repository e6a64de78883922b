"""shmproc.context: contexts per start method carrying the whole API, and the default context."""
import inspect
import multiprocessing
import multiprocessing.context

import pytest
import support_process as support
from conftest import assert_signature_extends

from shmproc import context, synchronize

DEFAULT = context._default_context
METHODS = ("fork", "spawn", "forkserver")


@pytest.fixture
def fresh_default():
    """The default context with no start method set; restored afterwards."""
    saved = DEFAULT._actual_context
    DEFAULT._actual_context = None
    yield DEFAULT
    DEFAULT._actual_context = saved


def _public(obj):
    return {name for name in dir(obj) if not name.startswith("_")}


class TestContextApi:

    def test_every_multiprocessing_context_name_exists(self):
        missing = _public(multiprocessing.context.DefaultContext) - _public(context.DefaultContext)
        assert not missing
        for method in METHODS:
            ours = DEFAULT.get_context(method)
            theirs = multiprocessing.get_context(method)
            assert not (_public(theirs) - _public(ours))

    @pytest.mark.parametrize("name", ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore",
                                      "Event", "Barrier", "Value", "Array", "RawValue", "RawArray",
                                      "Queue", "JoinableQueue", "SimpleQueue", "Pipe", "Pool"])
    def test_factory_signatures_match(self, name):
        ours = inspect.signature(getattr(DEFAULT, name))
        theirs = inspect.signature(getattr(multiprocessing.get_context(), name))
        assert_signature_extends(ours, theirs)

    def test_process_signature_matches(self):
        for method in METHODS:
            ours = inspect.signature(DEFAULT.get_context(method).Process)
            theirs = inspect.signature(multiprocessing.get_context(method).Process)
            assert ours == theirs

    def test_exceptions_are_multiprocessings(self):
        for name in ("ProcessError", "BufferTooShort", "TimeoutError", "AuthenticationError"):
            assert getattr(DEFAULT, name) is getattr(multiprocessing, name)
            assert getattr(context, name) is getattr(multiprocessing, name)

    def test_spawning_helpers_are_multiprocessings(self):
        # Objects of both libraries ask "is a process being spawned?": one answer for both.
        assert context.get_spawning_popen is multiprocessing.context.get_spawning_popen
        assert context.assert_spawning is multiprocessing.context.assert_spawning

    def test_process_classes(self):
        assert DEFAULT.Process is context.Process
        assert DEFAULT.get_context("fork").Process is context.ForkProcess
        assert DEFAULT.get_context("spawn").Process is context.SpawnProcess
        assert DEFAULT.get_context("forkserver").Process is context.ForkServerProcess
        assert issubclass(context.Process, multiprocessing.process.BaseProcess)

    def test_primitives_are_shmprocs(self):
        shm_ctx = DEFAULT.get_context("spawn")
        assert isinstance(shm_ctx.Lock(), synchronize.Lock)
        assert isinstance(shm_ctx.RLock(), synchronize.RLock)
        assert isinstance(shm_ctx.Semaphore(2), synchronize.Semaphore)
        assert isinstance(shm_ctx.BoundedSemaphore(2), synchronize.BoundedSemaphore)
        assert isinstance(shm_ctx.Event(), synchronize.Event)
        assert isinstance(shm_ctx.Condition(), synchronize.Condition)
        assert isinstance(shm_ctx.Barrier(2), synchronize.Barrier)

    def test_queues_and_pipes_work(self):
        queue = DEFAULT.Queue()
        queue.put(1)
        assert queue.get(timeout=10) == 1
        queue.close()
        queue.join_thread()
        left, right = DEFAULT.Pipe()
        left.send("x")
        assert right.recv() == "x"
        left.close()
        right.close()

    def test_cpu_count_and_process_queries(self):
        assert DEFAULT.cpu_count() == multiprocessing.cpu_count()
        assert DEFAULT.current_process() is multiprocessing.current_process()
        assert DEFAULT.parent_process() is None
        assert DEFAULT.active_children() == []

    def test_freeze_support_is_harmless(self):
        DEFAULT.freeze_support()


class TestStartMethods:

    def test_all_start_methods(self):
        assert DEFAULT.get_all_start_methods() == multiprocessing.get_all_start_methods()
        assert set(METHODS) <= set(DEFAULT.get_all_start_methods())

    def test_default_is_the_standard_librarys(self, fresh_default):
        assert fresh_default.get_start_method(allow_none=True) is None
        expected = multiprocessing.context._default_context._default_context._name
        assert fresh_default.get_start_method() == expected

    def test_get_context(self):
        assert DEFAULT.get_context() is DEFAULT.get_context(DEFAULT.get_start_method())
        for method in METHODS:
            shm_ctx = DEFAULT.get_context(method)
            assert shm_ctx.get_start_method() == method
            assert shm_ctx.get_context() is shm_ctx
            assert shm_ctx.get_context("spawn") is DEFAULT.get_context("spawn")
        with pytest.raises(ValueError, match="cannot find context"):
            DEFAULT.get_context("teleport")

    def test_set_start_method_once(self, fresh_default):
        fresh_default.set_start_method("spawn")
        assert fresh_default.get_start_method() == "spawn"
        assert fresh_default.get_context() is DEFAULT.get_context("spawn")
        with pytest.raises(RuntimeError, match="already been set"):
            fresh_default.set_start_method("fork")
        fresh_default.set_start_method("fork", force=True)
        assert fresh_default.get_start_method() == "fork"
        fresh_default.set_start_method(None, force=True)
        assert fresh_default.get_start_method(allow_none=True) is None
        with pytest.raises(ValueError):
            fresh_default.set_start_method("teleport")

    def test_concrete_contexts_cannot_be_set(self):
        with pytest.raises(ValueError):
            DEFAULT.get_context("fork").set_start_method("spawn")

    def test_shmproc_and_multiprocessing_defaults_are_independent(self, fresh_default):
        before = multiprocessing.get_start_method(allow_none=True)
        fresh_default.set_start_method("spawn")
        assert multiprocessing.get_start_method(allow_none=True) == before

    @pytest.mark.parametrize("method", METHODS)
    def test_default_process_follows_the_set_method(self, fresh_default, method):
        fresh_default.set_start_method(method)
        reader, writer = multiprocessing.Pipe(duplex=False)
        p = fresh_default.Process(target=support.report_start_method, args=(writer,))
        p.start()
        writer.close()
        assert reader.poll(30)
        # The child starts its own children the same way.
        assert reader.recv() == method
        p.join(10)
        assert p.exitcode == 0
        assert isinstance(p, context.Process)

    @pytest.mark.parametrize("method", METHODS)
    def test_child_of_a_concrete_context_defaults_to_its_method(self, fresh_default, method):
        reader, writer = multiprocessing.Pipe(duplex=False)
        p = DEFAULT.get_context(method).Process(target=support.report_start_method, args=(writer,))
        p.start()
        writer.close()
        assert reader.poll(30)
        assert reader.recv() == method
        p.join(10)
