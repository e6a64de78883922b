"""Instructions a spawned pool worker executes from exec to exit, shmproc's and multiprocessing's.

    python asv_bench/count_worker_start.py

Each library starts a spawn Pool(1) and runs one apply(); the worker's interpreter runs under
valgrind's callgrind (set_executable points at a wrapper), so the count is free of the machine's
noise: it is what "start to first result" costs the worker, plus an exit of a few hundred thousand.
(A fork server's children are forked from the server: their counts include the server's own, so
forkserver is left out.)

A spawned worker imports the program's main module again: this script imports only os and sys at
module level, so that the figures show the libraries' own cost. A program that imports more at the
top of its main module adds the same to both workers. shmproc's bytecode is written first, as an
install does. PYTHONHASHSEED is fixed (dict probing moves the counts by ~3%). Needs valgrind.
"""
import os
import sys


def child_counts(directory):
    """{pid: instructions} of every process callgrind saw."""
    import re
    counts = {}
    for name in os.listdir(directory):
        if name.endswith(".out"):
            with open(os.path.join(directory, name)) as f:
                found = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.MULTILINE)
            if found:
                counts[int(name[:-4])] = int(found.group(1))
    return counts


def run(library, directory):
    """Start a spawn pool of one worker under callgrind; its worker's instructions."""
    if library == "shmproc":
        import shmproc
        context = shmproc.get_context("spawn")
    else:
        import multiprocessing
        context = multiprocessing.get_context("spawn")
    wrapper = os.path.join(directory, "python-under-callgrind")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={directory}/%p.out '
                f'{sys.executable} "$@" 2>/dev/null\n')
    os.chmod(wrapper, 0o700)
    context.set_executable(wrapper)
    pool = context.Pool(1)
    worker_pid = pool._pool[0].pid
    pool.apply(abs, (-1,))
    pool.close()
    pool.join()
    return child_counts(directory)[worker_pid]


def main(argv):
    if argv[:1] == ["--run"]:
        print(run(argv[1], argv[2]))
        return
    import compileall
    import subprocess
    import tempfile

    import shmproc
    # shmproc's bytecode, as an install writes it (see compare_pool.py): else the worker counted
    # would compile shmproc's modules under PYTHONDONTWRITEBYTECODE.
    compileall.compile_dir(os.path.dirname(shmproc.__file__), quiet=1)
    figures = {}
    for library in ("shmproc", "multiprocessing"):
        with tempfile.TemporaryDirectory() as directory:
            done = subprocess.run([sys.executable, os.path.abspath(__file__), "--run", library,
                                   directory], capture_output=True, text=True,
                                  env=dict(os.environ, PYTHONHASHSEED="0"), check=True)
            figures[library] = int(done.stdout.split()[-1])
    print(f"spawned pool worker, exec to exit: shmproc {figures['shmproc'] / 1e6:.1f} million "
          f"instructions, multiprocessing {figures['multiprocessing'] / 1e6:.1f} million "
          f"(ratio {figures['multiprocessing'] / figures['shmproc']:.2f}x)")


if __name__ == "__main__":
    main(sys.argv[1:])
