"""Summary statistics shared by the benchmarks (tools.bench_engine, tools.bench_firmware)."""

import math


def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(math.ceil(q * len(sorted_values))))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(samples_ns, unit_ns):
    """(median, 99th percentile, maximum) of samples in ns, in units of unit_ns
    ns (1e3: microseconds, 1e6: milliseconds); NaN for no samples."""
    s = sorted(samples_ns)
    mx = s[-1] / unit_ns if s else float("nan")
    return percentile(s, 0.5) / unit_ns, percentile(s, 0.99) / unit_ns, mx
