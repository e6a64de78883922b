"""Instructions per operation of shmproc's hot paths, counted by callgrind (robust to a busy machine).

    python asv_bench/count_instructions.py                  # every workload
    python asv_bench/count_instructions.py queue pipe       # some of them

Each workload runs N times in one process under valgrind's callgrind; the figure is the difference
between an N = 60,000 and an N = 20,000 run divided by 40,000, so start-up and import cancel out.
PYTHONHASHSEED is fixed: dict probing otherwise moves the counts by about 3%. Needs valgrind. Compare
two builds by running this in each one's environment (docs/benchmarks.md, "The core split").
"""
import os
import re
import subprocess
import sys
import tempfile

WORKLOADS = ["queue", "queue_bytes", "batch", "pipe", "joinable", "lock", "event", "value",
             "submit"]
SHORT, LONG = 20_000, 60_000


def run(workload, n):
    import shmproc.connection
    import shmproc.queues
    import shmproc.sharedctypes
    from shmproc import synchronize

    if workload == "queue":
        q = shmproc.queues.Queue()
        for i in range(n):
            q.put(i)
            q.get()
    elif workload == "queue_bytes":
        q = shmproc.queues.SimpleQueue()
        payload = b"x" * 100
        for _ in range(n):
            q.put(payload)
            q.get()
    elif workload == "batch":           # per item: a put_many/get_many of 100 counts as 100
        q = shmproc.queues.Queue()
        items = list(range(100))
        for _ in range(n // 100):
            q.put_many(items)
            q.get_many(100)
    elif workload == "pipe":
        a, b = shmproc.connection.Pipe()
        for i in range(n):
            a.send(i)
            b.recv()
    elif workload == "joinable":
        q = shmproc.queues.JoinableQueue()
        for i in range(n):
            q.put(i)
            q.get()
            q.task_done()
    elif workload == "lock":
        lock = synchronize.Lock()
        for _ in range(n):
            with lock:
                pass
    elif workload == "event":
        e = synchronize.Event()
        for _ in range(n):
            e.set()
            e.clear()
            e.is_set()
    elif workload == "value":
        v = shmproc.sharedctypes.Value("i", 0)
        for _ in range(n):
            with v.get_lock():
                v.value += 1
    elif workload == "submit":          # the parent's share of ProcessPoolExecutor.submit+result
        import multiprocessing

        import shmproc.futures
        executor = shmproc.futures.ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("fork"))
        for future in [executor.submit(abs, i) for i in range(n)]:
            future.result()
        executor.shutdown()
    else:
        raise SystemExit(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")


def instructions(workload, n, directory):
    """Instructions of the measured process alone (a workload's forked workers write their own
    files, named by their pids)."""
    out = os.path.join(directory, f"{workload}.{n}.out")
    process = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
                                sys.executable, __file__, "--run", workload, str(n)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, PYTHONHASHSEED="0"))
    if process.wait() != 0:
        raise subprocess.CalledProcessError(process.returncode, process.args)
    with open(f"{out}.{process.pid}") as f:
        return int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.MULTILINE).group(1))


def main(argv):
    if argv[:1] == ["--run"]:
        run(argv[1], int(argv[2]))
        return
    with tempfile.TemporaryDirectory() as directory:
        for workload in argv or WORKLOADS:
            short, long = instructions(workload, SHORT, directory), instructions(workload, LONG, directory)
            print(f"{workload:12} {(long - short) / (LONG - SHORT):8.1f} instructions per round")


if __name__ == "__main__":
    main(sys.argv[1:])
