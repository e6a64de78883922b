"""Helpers every benchmark module may use: which implementations exist, and ratios measured side by
side.

Benchmarks use only public names, so the suite still runs against commits older than a feature: a
name a commit lacks makes `implementation` raise NotImplementedError, which asv reports as a skip.
"""
import multiprocessing
import threading

from shmproc.bench.timing import interleaved, medians

# Processes for both libraries are launched the same way; only the object under test differs.
FORK = multiprocessing.get_context("fork")
LIBRARIES = ("shmproc", "multiprocessing")


def factories(name):
    """The module or context whose factories a benchmark calls: shmproc, a fork context, threading."""
    if name == "shmproc":
        import shmproc
        return shmproc
    if name == "multiprocessing":
        return FORK
    if name == "threading":
        return threading
    raise ValueError(f"unknown library {name!r}")


def implementation(library_name, attribute):
    """library(library_name).<attribute>, or NotImplementedError (asv: skipped) if it is missing."""
    found = getattr(factories(library_name), attribute, None)
    if found is None:
        raise NotImplementedError(f"{library_name} has no {attribute} in this version")
    return found


def side_by_side_ratio(numerator, denominator, repeat=5):
    """median(numerator()) / median(denominator()), the two zero-argument timers (each returning
    seconds) interleaved in one process; for track_* benchmarks with unit "ratio"."""
    result = medians(interleaved({"numerator": numerator, "denominator": denominator}, repeat))
    return result["numerator"] / result["denominator"]
