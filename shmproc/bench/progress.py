"""A progress bar on stderr: tqdm's when it is installed, else a one-line bar of our own."""
import sys
import time

__all__ = ["LineBar", "NoBar", "TqdmBar", "progress_bar"]


class LineBar:
    """`[#####.....]  12/96  fibonacci x4 threads  0:08` redrawn in place, at most 10 times a second."""

    width = 30

    def __init__(self, total, stream=None):
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self.drawn_at = 0.0

    def update(self, description=""):
        self.done += 1
        now = time.monotonic()
        if now - self.drawn_at < 0.1 and self.done < self.total:
            return
        self.drawn_at = now
        filled = self.width * self.done // self.total
        elapsed = int(now - self.started)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done:>4}/{self.total}"
                f"  {description:<28.28}  {elapsed // 60}:{elapsed % 60:02d}")
        self.stream.write("\r" + line)
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


class TqdmBar:
    def __init__(self, total):
        from tqdm import tqdm
        self.bar = tqdm(total=total, unit="run", leave=True, dynamic_ncols=True)

    def update(self, description=""):
        self.bar.set_postfix_str(description, refresh=False)
        self.bar.update(1)

    def close(self):
        self.bar.close()


class NoBar:
    def update(self, description=""):
        pass

    def close(self):
        pass


def progress_bar(total, enabled=True):
    if not enabled:
        return NoBar()
    try:
        return TqdmBar(total)
    except ImportError:
        return LineBar(total)
