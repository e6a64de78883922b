"""What a handle costs to send and receive, this checkout against another one, side by side.

    python asv_bench/compare_handles.py --before PATH [--repeat 7] [--quick] [--only TEXT]
    python asv_bench/compare_handles.py --no-leak 10000

PATH is a built checkout to compare against, e.g. the commit before handles outlived their sender:
`git worktree add /tmp/before <commit> && cd /tmp/before && python setup.py build_ext --inplace`.
Every row runs in a fresh interpreter per candidate and repeat (its own process tree, so its own
keeper), the candidates interleaved; the medians are printed with after - before per message.

Rows: a queue's hot path with no handle (ints, a small tuple) in one process; a small shared array
sent to a child and back, already mapped there (the steady state of a worker loop); fresh shared
arrays (each its own segment) sent to a child, which attaches each one; and, for this checkout
only, arrays whose sender has exited (attached through the keeper).

--no-leak N starts N short-lived workers one after another, each returning a fresh 1 MB shared
array through a Queue and exiting before the parent gets it (so through the keeper), the parent
dropping it; it prints the shared-memory usage before, at its highest, and after.
"""
import functools
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
AFTER = os.path.dirname(HERE)

# (row, workload, messages per run, target for after - before)
ROWS = [
    ("put+get int, one process", "queue_ints", 200_000, "~0"),
    ("put+get small tuple, one process", "queue_tuples", 100_000, "~0"),
    ("shared array to a child and back, mapped", "array_round_trip", 20_000, "<= 20 µs"),
    ("fresh 128 KB shared array to a child", "fresh_arrays", 400, "<= 20 µs"),
]
SENDER_GONE = ("fresh 128 KB array, sender exited", "sender_gone", 400)


def _put_get(shmproc, count, item):
    q = shmproc.Queue()
    start = time.perf_counter()
    for _ in range(count):
        q.put(item)
        q.get()
    return (time.perf_counter() - start) / count


def queue_ints(shmproc, count):
    return _put_get(shmproc, count, 12345)


def queue_tuples(shmproc, count):
    return _put_get(shmproc, count, ("x", 1, 2.5))


def _echo(requests, answers):
    while True:
        item = requests.get()
        if item is None:
            return
        answers.put(int(item[0]))


def _child(shmproc, target, *args):
    import multiprocessing
    child = multiprocessing.get_context("fork").Process(target=target, args=args)
    child.start()
    return child


def _round_trips(shmproc, warm_up, timed):
    """Seconds per array for sending each of `timed` to a child and getting its answer, after
    doing so for each of `warm_up` (the child maps, the keeper starts)."""
    requests, answers = shmproc.Queue(), shmproc.Queue()
    child = _child(shmproc, _echo, requests, answers)
    for array in warm_up:
        requests.put(array)
        answers.get()
    start = time.perf_counter()
    for array in timed:
        requests.put(array)
        answers.get()
    elapsed = time.perf_counter() - start
    requests.put(None)
    child.join()
    return elapsed / len(timed)


def array_round_trip(shmproc, count):
    array = shmproc.zeros(16)
    return _round_trips(shmproc, [array] * 100, [array] * count)


def fresh_arrays(shmproc, count):
    # 128 KB: a segment each; all kept alive (the version before needs it)
    arrays = [shmproc.zeros(16384) for _ in range(count + 20)]
    return _round_trips(shmproc, arrays[:20], arrays[20:])


def _send_and_exit(shmproc, queue, count):
    for _ in range(count):
        queue.put(shmproc.zeros(16384))


def sender_gone(shmproc, count):
    queue = shmproc.Queue()
    warm = _child(shmproc, _send_and_exit, shmproc, queue, 1)
    warm.join()
    queue.get()
    child = _child(shmproc, _send_and_exit, shmproc, queue, count)
    child.join()
    start = time.perf_counter()
    for _ in range(count):
        queue.get()
    return (time.perf_counter() - start) / count


def _return_fresh_array(queue):
    import shmproc
    array = shmproc.zeros(1 << 17)              # 1 MB
    array[:] = 1
    queue.put(array)


def shm_used_bytes():
    info = os.statvfs(os.environ.get("SHMPROC_SHM_DIR", "/dev/shm"))
    return (info.f_blocks - info.f_bfree) * info.f_frsize


def no_leak(workers):
    import gc
    import multiprocessing

    import shmproc
    import shmproc.ndarray  # noqa: F401
    context = multiprocessing.get_context("fork")
    queue = shmproc.Queue()

    def one():
        worker = context.Process(target=_return_fresh_array, args=(queue,))
        worker.start()
        worker.join()
        assert queue.get()[0] == 1

    for _ in range(20):
        one()
    gc.collect()
    before = highest = shm_used_bytes()
    start = time.perf_counter()
    for i in range(workers):
        one()
        if i % 100 == 0:
            highest = max(highest, shm_used_bytes())
    gc.collect()
    time.sleep(0.1)
    after = shm_used_bytes()
    print(f"{workers} workers in {time.perf_counter() - start:.1f} s; shared memory in use: "
          f"before {before / 2**20:.1f} MB, highest {highest / 2**20:.1f} MB, after {after / 2**20:.1f} MB")


def run_worker(checkout, workload, count):
    sys.path.insert(0, checkout)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import shmproc
    import shmproc.ndarray  # noqa: F401
    if not shmproc.__file__.startswith(checkout):
        raise SystemExit(f"imported shmproc from {shmproc.__file__}, not {checkout}")
    print(globals()[workload](shmproc, count))


def measure(checkout, workload, count):
    environment = {key: value for key, value in os.environ.items() if key != "SHMPROC_KEEPER"}
    environment.pop("PYTHONPATH", None)
    out = subprocess.run([sys.executable, __file__, "--worker", checkout, workload, str(count)],
                         capture_output=True, text=True, env=environment, timeout=600, cwd="/")
    if out.returncode:
        raise RuntimeError(f"{workload} in {checkout} failed:\n{out.stderr}")
    return float(out.stdout.split()[-1])


def main():
    if sys.argv[1:2] == ["--worker"]:
        return run_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    sys.path.insert(0, AFTER)
    if sys.argv[1:2] == ["--no-leak"]:
        return no_leak(int(sys.argv[2]))
    import argparse

    from shmproc.bench.timing import format_seconds, format_table, interleaved, medians
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="a built checkout to compare against")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    before = os.path.abspath(args.before)
    scale = 10 if args.quick else 1
    table = []
    for row, workload, count, target in ROWS:
        if args.only not in row:
            continue
        count = max(count // scale, 10)
        samples = interleaved({"before": functools.partial(measure, before, workload, count),
                               "after": functools.partial(measure, AFTER, workload, count)},
                              args.repeat)
        m = medians(samples)
        extra = (m["after"] - m["before"]) * 1e6
        table.append((row, format_seconds(m["before"]), format_seconds(m["after"]), f"{extra:+.2f} µs",
                      target))
        print(table[-1], flush=True)
    row, workload, count = SENDER_GONE
    if args.only in row:
        samples = interleaved({"after": lambda: measure(AFTER, workload, max(count // scale, 10))},
                              args.repeat)
        table.append((row, "fails", format_seconds(medians(samples)["after"]), "", ""))
    print(format_table(("per message", "before", "after", "after - before", "target"), table))


if __name__ == "__main__":
    main()
