"""joblib's Parallel on the "shmproc" backend (shmproc.Pool underneath)."""
import numpy as np
import pytest

joblib = pytest.importorskip("joblib", reason="needs joblib (in the test extra)")

import support_distributed as support  # noqa: E402

import shmproc  # noqa: E402
import shmproc.joblib_backend  # noqa: E402


def column_sum(array, column):
    return float(array[:, column].sum())


def test_results_match_serial():
    array = np.random.default_rng(1).random((1000, 300))       # 2.4 MB: shared, not pickled
    expected = [column_sum(array, c) for c in range(40)]
    with joblib.parallel_config(backend="shmproc", n_jobs=2):
        assert joblib.Parallel()(joblib.delayed(column_sum)(array, c) for c in range(40)) == expected


def test_errors_reach_the_caller():
    with joblib.parallel_config(backend="shmproc", n_jobs=2), \
            pytest.raises(ValueError, match=r"task \d failed"):
        joblib.Parallel()(joblib.delayed(support.fail)(x) for x in [1, 2, 3])


def test_shared_array_is_passed_as_it_is():
    array = shmproc.zeros((4, 1000))
    with joblib.parallel_config(backend="shmproc", n_jobs=2):
        joblib.Parallel()(joblib.delayed(support.fill_and_digest)(array[row], row)
                          for row in range(4))
    assert [float(array[row].mean()) for row in range(4)] == [0.0, 1.0, 2.0, 3.0]


def test_an_array_first_seen_after_the_pool_started_is_shared():
    early = np.random.default_rng(3).random(300_000)            # 2.4 MB: inherited by the fork
    late = np.random.default_rng(4).random(300_000)             # seen later: a shared copy
    calls = [joblib.delayed(column_sum)(early.reshape(1000, 300), c) for c in range(4)]
    calls += [joblib.delayed(column_sum)(late.reshape(1000, 300), c) for c in range(4)]
    with joblib.parallel_config(backend="shmproc", n_jobs=2):
        got = joblib.Parallel(batch_size=1, pre_dispatch="2")(calls)
    assert got == [column_sum(early.reshape(1000, 300), c) for c in range(4)] + \
        [column_sum(late.reshape(1000, 300), c) for c in range(4)]
    assert not shmproc.joblib_backend._inherited                # forgotten after the call
