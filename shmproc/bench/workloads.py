"""PEP 371's benchmark workloads, one definition shared by `python -m shmproc bench` and asv.

Each workload is a function one worker runs (a module-level function, so that spawned children can
import it), the sizes of the PEP's version and of a short version, and, where it needs one, a
resource that exists for the duration of a measurement (a generated file, an HTTP server). The PEP
timed each function run by N workers serially, by N threads and by N processes; `runner` does that.
"""
import contextlib
import dataclasses
import os
import random
import tempfile
import urllib.request
from typing import Callable, Optional

__all__ = [
    "WORKLOADS", "Workload", "empty", "fibonacci", "file_io", "lorem_file", "page_server",
    "queue_push", "sum_primes", "url_get", "write_lorem_file",
]

LOREM_WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
               "incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud").split()
LOREM_BYTES = 1 << 20
FETCH_TIMEOUT = 10


# --- what one worker does --------------------------------------------------------------------------

def empty():
    """Nothing: what is left is the cost of starting and joining the workers."""


def fibonacci(count):
    """The first `count` Fibonacci numbers, big integers and all: pure interpreter work."""
    previous, current = 0, 1
    for _ in range(count):
        previous, current = current, previous + current


def sum_primes(limit):
    """The sum of the primes below `limit` by trial division: pure interpreter work."""
    total = 0
    for number in range(2, limit):
        for divisor in range(2, int(number ** 0.5) + 1):
            if number % divisor == 0:
                break
        else:
            total += number
    return total


def file_io(path, seeks):
    """Open the lorem file, seek `seeks` times at random and copy the next line to /dev/null."""
    chooser = random.Random(seeks)
    size = os.path.getsize(path)
    with open(path, "rb") as source, open(os.devnull, "wb") as sink:
        for _ in range(seeks):
            source.seek(chooser.randrange(size))
            source.readline()                   # finish the line the seek landed in
            sink.write(source.readline())


def url_get(url, fetches):
    """Fetch a page `fetches` times, a new connection each time (as urllib.urlopen did in 2008)."""
    for _ in range(fetches):
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:
            response.read()


def queue_push(queue, items):
    """Put `items` small objects on a queue that the parent drains."""
    for item in range(items):
        queue.put(item)


# --- resources ---------------------------------------------------------------------------------------

def write_lorem_file(path, size=LOREM_BYTES, seed=371):
    """Write about `size` bytes of lorem ipsum lines, the same bytes for the same seed."""
    chooser = random.Random(seed)
    written = 0
    with open(path, "w") as out:
        while written < size:
            line = " ".join(chooser.choice(LOREM_WORDS) for _ in range(chooser.randint(6, 14)))
            line = line.capitalize() + ".\n"
            out.write(line)
            written += len(line)


@contextlib.contextmanager
def lorem_file():
    with tempfile.TemporaryDirectory(prefix="shmproc-bench-") as directory:
        path = os.path.join(directory, "lorem.txt")
        write_lorem_file(path)
        yield {"path": path}


@contextlib.contextmanager
def page_server():
    from .http_server import serving
    with serving() as url:
        yield {"url": url}


# --- the table ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    title: str                      # formatted with the sizes: "{count:,} Fibonacci numbers"
    measures: str
    body: Callable
    full: dict                      # the PEP's sizes
    short: dict                     # python -m shmproc bench's default, asv's sizes
    resource: Optional[Callable] = None     # a context manager yielding more keyword arguments
    uses_queue: bool = False                # body gets a `queue` that the parent drains

    def arguments(self, size):
        return dict(self.full if size == "full" else self.short)

    def describe(self, size):
        return self.title.format(**self.arguments(size))


WORKLOADS = {workload.name: workload for workload in (
    Workload("empty", "empty function", "starting and joining N workers that do nothing",
             empty, full={}, short={}),
    Workload("fibonacci", "{count:,} Fibonacci numbers", "CPU-bound interpreter work, nothing shared",
             fibonacci, full={"count": 50_000}, short={"count": 20_000}),
    Workload("primes", "sum of primes below {limit:,}", "CPU-bound interpreter work, nothing shared",
             sum_primes, full={"limit": 100_000}, short={"limit": 30_000}),
    Workload("file_io", "file I/O, {seeks:,} random seeks in 1 MB", "read syscalls on a 1 MB file in the page cache",
             file_io, full={"seeks": 20_000}, short={"seeks": 5_000}, resource=lorem_file),
    Workload("url_get", "fetch a page {fetches} times", "HTTP over loopback: waiting on sockets",
             url_get, full={"fetches": 100}, short={"fetches": 10}, resource=page_server),
    Workload("queue", "push {items:,} items through a queue", "queue overhead: small items to the parent",
             queue_push, full={"items": 10_000}, short={"items": 5_000}, uses_queue=True),
)}
