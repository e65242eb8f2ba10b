"""Peak memory of the running process, per stage: the figures ``run.log`` and ``manifest.json`` record."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import duckdb

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


def release_memory(con=None, limit: str | None = None) -> None:
    """Give the operating system back the memory that finished stages freed but the process still holds.

    DuckDB keeps freed buffers up to its ``memory_limit`` for reuse: after the panel stage of a 10⁶-person run
    the process held ~6 GB it no longer used, and every later stage's peak sat on top of it (issue 14). Lowering
    the limit to what the engine still uses makes it flush them; then the configured ``limit``
    (``engine.memory_limit``; None: DuckDB's default) is set again, so later stages may use it all.
    ``malloc_trim`` then returns the C heap's free pages (glibc; elsewhere a no-op). Nothing the engine holds is
    dropped: in-memory tables stay (they count in what it uses)."""
    if con is not None:
        try:
            used = con.sql("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()").fetchone()[0]
            con.execute(f"SET memory_limit = '{int(used) // 2**20 + 256}MB'")
            con.execute("RESET memory_limit" if limit is None else f"SET memory_limit = '{limit}'")
        except duckdb.Error:  # a closed connection: nothing to release
            pass
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
