"""progress=True on a pool's map: tqdm's bar when tqdm is installed, a plain line otherwise.

The pool thread calls update(n) once per batch of results, not per task, so a bar costs next to
nothing on tiny tasks; either bar is redrawn at most ten times a second.
"""
import importlib
import sys
import time

__all__ = ["ProgressBar"]

_REDRAW_EVERY = 0.1     # seconds


class ProgressBar:
    def __init__(self, total=None, file=None):
        self.total = total
        self.count = 0
        self._closed = False
        self._drawn_at = 0.0
        try:
            tqdm = importlib.import_module("tqdm.auto").tqdm    # optional: shmproc[progress]
        except ImportError:
            self._bar = None
            self._file = file if file is not None else sys.stderr
            self._started = time.monotonic()
        else:
            self._bar = tqdm(total=total, file=file)

    def set_total(self, total):
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()
        self._close_if_done()

    def update(self, count):
        self.count += count
        now = time.monotonic()
        if now - self._drawn_at < _REDRAW_EVERY and self.count != self.total:
            return              # the bar moves ten times a second at most, whatever the rate
        self._drawn_at = now
        if self._bar is not None:
            self._bar.update(self.count - self._bar.n)
        else:
            self._draw(now)
        self._close_if_done()

    def _draw(self, now, end=""):
        rate = self.count / max(now - self._started, 1e-9)
        if self.total:
            width = 30
            filled = width * self.count // self.total
            text = (f"\r[{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} "
                    f"({rate:,.0f} tasks/s)")
        else:
            text = f"\r{self.count} tasks ({rate:,.0f} tasks/s)"
        self._file.write(text + end)
        self._file.flush()

    def _close_if_done(self):
        if self.total is not None and self.count >= self.total:
            self.close()

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.update(self.count - self._bar.n)
            self._bar.close()
        else:
            self._draw(time.monotonic(), "\n")
