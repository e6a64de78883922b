"""Benchmarks of shmproc against multiprocessing and threading: PEP 371's workloads (``workloads``),
the runner behind ``python -m shmproc bench`` (``runner``), and side-by-side timing (``timing``)."""
