"""Side-by-side timing: every candidate is measured in the same run, interleaved repeat by repeat.

On a small shared machine the background load drifts over seconds; measuring candidate A for a minute
and then B would fold that drift into the ratio. Interleaving (A, B, C, then B, C, A, ...) spreads it
evenly, and the median of the repeats ignores the odd preempted one.
"""
import argparse
import statistics
import timeit

__all__ = ["comparison_arguments", "format_ratio", "format_seconds", "format_table", "interleaved", "medians",
           "per_call"]


def comparison_arguments(description, repeat, argv=None, quick="a tenth of the work, for a smoke test"):
    """The command line every asv_bench/compare_*.py script takes: --repeat, --quick, --only."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=repeat, help="repeats per candidate (median reported)")
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--only", default="", help="run only the rows whose name contains this text")
    return parser.parse_args(argv)


def interleaved(measurements, repeat):
    """Run each zero-argument callable in `measurements` (name -> seconds) `repeat` times, rotating
    the order every round; return name -> list of seconds."""
    names = list(measurements)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeat):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measurements[name]())
    return samples


def medians(samples):
    return {name: statistics.median(values) for name, values in samples.items()}


def per_call(statement, namespace, number):
    """A callable measuring one run of `statement` (a string, looped by timeit without a Python
    call per iteration) in seconds per execution."""
    timer = timeit.Timer(statement, globals=namespace)
    return lambda: timer.timeit(number) / number


def format_seconds(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator == 0:
        return "-"
    return f"{numerator / denominator:.2f}"


def format_table(header, rows):
    """A plain-text table, columns padded to their widest cell; first column left-aligned."""
    cells = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]

    def line(row):
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        return "  ".join([first] + rest).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])
