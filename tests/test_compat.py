"""Standard-library code that takes a multiprocessing context runs on a shmproc one."""
import concurrent.futures

import pytest

import shmproc


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool_executor_on_a_shmproc_context(method):
    # The executor builds multiprocessing's own Queue from our Lock and BoundedSemaphore, and reads
    # our SimpleQueue through its _reader: both must answer as multiprocessing's do.
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=shmproc.get_context(method)) as ex:
        assert list(ex.map(abs, [-1, -2, 3], timeout=30)) == [1, 2, 3]
        assert ex.submit(pow, 2, 10).result(timeout=30) == 1024
