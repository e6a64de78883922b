"""A duplex Pipe's notify descriptor, this checkout against another one, side by side.

    python asv_bench/compare_pipe_notify.py --before PATH [--repeat 9] [--quick]

PATH is a built checkout to compare against (`git worktree add /tmp/before <commit> && cd
/tmp/before && python setup.py build_ext --inplace`), e.g. the commit before a duplex Pipe's notify
descriptors became a socketpair. Each row runs in a fresh interpreter per checkout and repeat, the
checkouts interleaved, and prints the medians per message or round trip.

Rows: a round trip with recv() only (no descriptor asked for: the hot path, which must not
change); a round trip where the parent waits with shmproc's wait() before each recv(), and one
with the standard library's wait() (which asks a duplex Connection for fileno() as send_handle
does, so the parent's next message also sends a byte to the child); one-way messages.
"""
import functools
import os
import subprocess
import sys
import time

AFTER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = [("round trip, recv() only", "plain", 20_000), ("round trip, shmproc wait() + recv()", "shmproc",
        20_000), ("round trip, stdlib wait() + recv()", "stdlib", 20_000),
        ("one way, 200,000 ints", "one_way", 200_000)]


def _echo(conn, count):
    for _ in range(count):
        conn.send(conn.recv())


def _send_ints(conn, count):
    for i in range(count):
        conn.send(i)


def timed_in_this_interpreter(how, count):
    """Seconds per round trip (or per message, one way) with a forked peer."""
    import multiprocessing.connection

    import shmproc
    import shmproc.connection
    here, there = shmproc.Pipe()
    target = _send_ints if how == "one_way" else _echo
    peer = multiprocessing.get_context("fork").Process(target=target, args=(there, count + 1))
    wait = {"shmproc": shmproc.connection.wait, "stdlib": multiprocessing.connection.wait}.get(how)
    peer.start()
    if how != "one_way":
        here.send(-1)
    here.recv()                             # the peer runs: start timing from here
    started = time.perf_counter()
    for i in range(count):
        if how != "one_way":
            here.send(i)
        if wait is not None:
            wait([here])
        here.recv()
    elapsed = time.perf_counter() - started
    peer.join()
    return elapsed / count


def in_checkout(checkout, how, count):
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("SHMPROC_KEEPER", "PYTHONPATH")}
    code = (f"import sys; sys.path.insert(0, {checkout!r}); sys.path.insert(0, {os.path.dirname(__file__)!r});"
            f"import shmproc; assert shmproc.__file__.startswith({checkout!r}), shmproc.__file__;"
            f"import compare_pipe_notify as c; print(c.timed_in_this_interpreter({how!r}, {count}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environment, timeout=600, cwd="/")
    if result.returncode:
        raise RuntimeError(f"{how} in {checkout} failed:\n{result.stderr}")
    return float(result.stdout.split()[-1])


def main():
    import argparse
    sys.path.insert(0, AFTER)
    from shmproc.bench.timing import format_seconds, format_table, interleaved, medians
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="a built checkout to compare against")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    before = os.path.abspath(args.before)
    table = []
    for row, how, count in ROWS:
        count = count // 10 if args.quick else count
        m = medians(interleaved({"before": functools.partial(in_checkout, before, how, count),
                                 "after": functools.partial(in_checkout, AFTER, how, count)},
                                args.repeat))
        table.append((row, format_seconds(m["before"]), format_seconds(m["after"]),
                      f"{m['after'] / m['before']:.2f}"))
        print(table[-1], flush=True)
    print(format_table(("per message or round trip", "before", "after", "after / before"), table))


if __name__ == "__main__":
    main()
