"""Process start + join of an empty target: multiprocessing and shmproc side by side.

    python asv_bench/compare_process.py [--rounds 20] [--methods fork,forkserver,spawn]

(Under PYTHONDONTWRITEBYTECODE it first writes shmproc's bytecode files, see main().)

For each start method the two libraries run in alternating batches in this one process (the
order flips every round, so drift in the machine's load falls on both), each start + join timed
on its own; the table gives the medians and the speed-up (multiprocessing's time over shmproc's:
above 1, shmproc is faster). The target (docs/process.md): 1.2 or more with fork, 1.0 or more otherwise.
"""
import argparse
import compileall
import multiprocessing
import os
import statistics
import sys
import time

# Nothing else at the top: spawned children re-import this file as their main module, and a
# multiprocessing child must not pay for importing shmproc (a program using multiprocessing would
# not import it); shmproc's children import what they need to run, as they would in a program.

# Batch sizes per round: a fork costs ~2 ms, a spawn ~100 ms.
BATCH = {"fork": 50, "forkserver": 5, "spawn": 3}


def empty():
    pass


def shmproc_context(start_method):
    import shmproc
    get_context = getattr(shmproc, "get_context", None)
    if get_context is None:   # older commits: the contexts exist but are not exported yet
        from shmproc import context
        get_context = context._default_context.get_context
    return get_context(start_method)


def timed_batch(ctx, number, samples):
    for _ in range(number):
        started = time.perf_counter()
        process = ctx.Process(target=empty)
        process.start()
        process.join()
        samples.append(time.perf_counter() - started)


def compare(start_method, rounds):
    contexts = {"shmproc": shmproc_context(start_method),
                "multiprocessing": multiprocessing.get_context(start_method)}
    samples = {name: [] for name in contexts}
    # Fork server, resource tracker, first imports: not timed. The fork server is shared by both
    # libraries and shmproc's first process starts it, as it would in a program using shmproc: it
    # then preloads shmproc.context, which multiprocessing's children inherit and do not use.
    for ctx in contexts.values():
        timed_batch(ctx, 2, [])
    names = list(contexts)
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            timed_batch(contexts[name], BATCH[start_method], samples[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--methods", default="fork,forkserver,spawn")
    args = parser.parse_args()
    import shmproc
    from shmproc.bench.timing import format_seconds, format_table
    if sys.flags.dont_write_bytecode:
        # Spawned and fork-server children import shmproc; without bytecode files (a checkout
        # under PYTHONDONTWRITEBYTECODE, as on these VMs) each child would compile it from source,
        # which an installed package never does.
        compileall.compile_dir(os.path.dirname(shmproc.__file__), quiet=1)
    rows = []
    for start_method in args.methods.split(","):
        result = compare(start_method, args.rounds)
        theirs, ours = result["multiprocessing"], result["shmproc"]
        rows.append([start_method, format_seconds(theirs), format_seconds(ours),
                     f"{theirs / ours:.2f}"])
    print(format_table(["start + join, empty target", "multiprocessing", "shmproc", "speed-up"],
                       rows))


if __name__ == "__main__":
    main()
