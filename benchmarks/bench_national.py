"""The configured run at national scale (issue 14): a synthetic world of N persons, the example analysis with the
full candidate pool, stage by stage.

    nice -n 10 .venv/bin/python benchmarks/bench_national.py --persons 1000000 [--dir /tmp/national] [--rerun] [--memory-limit 4GB]

Generates the world once (``synth.generate`` with 2 workers; reused when ``DIR/world_N/truth.json`` exists), writes
a config from ``analyses/example_synthetic/config.yaml`` with ``candidate_sample_rate: 1.0``, the window of the
world and a stage cache in ``DIR``, and runs ``finsam-effekt run`` in a child process (so its peak RSS is the run's
own), then prints wall seconds, CPU seconds, peak RSS and rows per stage from its ``manifest.json`` and the child's
total. ``--rerun`` runs a second time with one estimator changed (the stage cache's case). Targets on an idle
2-core, 24 GiB machine: 10⁶ persons ≤ 5 min and ≤ 6 GiB; 5·10⁶ persons ≤ 25 min and ≤ 10 GiB (within
``engine.memory_limit`` + 2 GiB); the rerun ≤ 2 min. Record the figures in ``benchmarks/README.md`` with the
load average the script prints.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def world(dir_: Path, persons: int, seed: int) -> Path:
    """The synthetic world of ``persons`` persons (generated once)."""
    w = dir_ / f"world_{persons}_{seed}"
    if not (w / "truth.json").is_file():
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c",
             "import sys; from finsam_effekt.synth import SynthConfig, generate; "
             f"generate(sys.argv[1], SynthConfig(persons={persons}, seed={seed}), workers=2)", str(w)],
            check=True,
        )  # fmt: skip
        print(f"world: {persons:,} persons generated in {time.perf_counter() - t0:.0f} s", flush=True)
    return w


def config(dir_: Path, w: Path, estimators: list[str], memory_limit: str) -> Path:
    cfg = yaml.safe_load(
        (ROOT / "analyses" / "example_synthetic" / "config.yaml").read_text(encoding="utf-8")
    )
    cfg["inputs"] = str(w / "mapping.yaml")
    cfg["cost_benefit"]["parameters"] = str(ROOT / "configs" / "cost_benefit_parameters.yaml")
    cfg["eligibility"]["candidate_sample_rate"] = 1.0
    cfg["estimators"] = estimators
    cfg["engine"] = {"memory_limit": memory_limit, "temp_directory": str(dir_ / "spill")}
    cfg["cache"] = {"directory": str(dir_ / "cache")}
    path = dir_ / f"config_{'_'.join(estimators)}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def run(cfg: Path, out: Path) -> dict:
    """``finsam-effekt run`` in a child process; returns wall/CPU/peak of the child and its manifest."""
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "finsam_effekt", "run", str(cfg), "--out", str(out), "--force"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return {
        "wall": time.perf_counter() - t0,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_mib": after.ru_maxrss / 1024,
        "load": (load0, os.getloadavg()),
        "manifest": manifest,
    }


def show(label: str, r: dict) -> None:
    m = r["manifest"]
    meas = m.get("measurements", {})
    print(f"\n{label}")
    print(f"{'stage':<18}{'rows':>14}{'wall s':>10}{'cpu s':>10}{'peak MiB':>10}  cache")
    for name, secs in m["timings_seconds"].items():
        rows = m["rows"].get(name, "")
        cpu = meas.get("cpu_seconds", {}).get(name, "")
        peak = meas.get("peak_memory_mb", {}).get(name, "")
        cache = meas.get("stage_cache", {}).get(name, "")
        print(f"{name:<18}{rows!s:>14}{secs:>10.1f}{cpu!s:>10}{peak!s:>10}  {cache}")
    (l0, l1) = r["load"]
    # the run resets the kernel's peak mark at every stage (pipeline.resources), so the child's ru_maxrss is the
    # last stage's peak: the run's peak is the largest stage peak
    peaks = [float(v) for v in meas.get("peak_memory_mb", {}).values() if v not in (None, "")]
    peak = max(peaks, default=r["peak_mib"])
    print(
        f"total wall {r['wall']:.0f} s, CPU {r['cpu']:.0f} s, peak RSS {peak:.0f} MiB; load average "
        f"before {l0[0]:.2f}/{l0[1]:.2f}/{l0[2]:.2f}, after {l1[0]:.2f}/{l1[1]:.2f}/{l1[2]:.2f} "
        f"on {os.cpu_count()} cores"
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_national"))
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument(
        "--rerun", action="store_true", help="also rerun with one estimator changed (stage cache)"
    )
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    w = world(args.dir, args.persons, args.seed)
    first = ["weighted_mean_diff", "regression_adjustment", "matched_did"]
    r1 = run(config(args.dir, w, first, args.memory_limit), args.dir / "out")
    show(f"run: {args.persons:,} persons, full candidate pool", r1)
    if args.rerun:
        r2 = run(config(args.dir, w, ["weighted_mean_diff", "regression_adjustment"], args.memory_limit),
                 args.dir / "out_rerun")  # fmt: skip
        show("rerun with one estimator fewer (stage cache)", r2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
