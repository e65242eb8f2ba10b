"""Peak memory of the running process, per stage: the figures ``run.log`` and ``manifest.json`` record."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux ≥ 4.0: writing 5 to ``clear_refs``), so the next
    :func:`peak_rss_mb` is the peak since now; elsewhere a no-op (the peak is then the process's peak so far)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float | None:
    """Peak resident memory in MiB since the last :func:`reset_peak_rss` (Linux ``VmHWM``), else since start."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
