"""Time the example analysis end to end, stage by stage (issue 9: ≤ 60 s on a 2-core machine).

    python benchmarks/bench_run.py [CONFIG] [--out DIR]

Runs ``pipeline.run`` on ``analyses/example_synthetic/config.yaml`` (default) and prints wall and CPU seconds per
stage (CPU seconds of this process: on a shared machine wall time includes waiting for a core), the total and the
peak RSS. Record the figures in ``benchmarks/RUN_TIMINGS.md``. Determinism (identical CSVs on a rerun) is checked
by ``tests/test_run.py``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _peak_mib() -> float:
    """Peak RSS so far (VmHWM; the growth after a stage shows which stage set it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", default=str(ROOT / "analyses" / "example_synthetic" / "config.yaml"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    from finsam_effekt.config import load_config
    from finsam_effekt.pipeline import run

    cfg = load_config(Path(args.config))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_run_")) / "out"
    cpu: dict[str, float] = {}
    t_cpu = [time.process_time()]

    def started(name: str) -> None:
        t_cpu[0] = time.process_time()

    hwm: dict[str, float] = {}

    def finished(rec) -> None:
        cpu[rec.name] = time.process_time() - t_cpu[0]
        hwm[rec.name] = _peak_mib()

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    res = run(cfg, out, force=True, on_start=started, on_stage=finished)
    wall = time.perf_counter() - t0
    print(f"{'stage':<18}{'rows':>12}{'wall s':>10}{'cpu s':>10}{'peak MiB':>10}")
    for s in res.stages:
        rows = "" if s.rows is None else str(s.rows)
        print(
            f"{s.name:<18}{rows:>12}{s.seconds:>10.2f}{cpu.get(s.name, 0.0):>10.2f}{hwm.get(s.name, 0):>10.0f}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total wall {wall:.1f} s, cpu {sum(cpu.values()):.1f} s, peak RSS {peak:.0f} MiB → {res.out}")
    load1 = os.getloadavg()
    print(
        f"load average (1/5/15 min) before {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
        f"after {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f} on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
