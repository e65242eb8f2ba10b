"""Cost-benefit on the shipped synthetic world: estimated vs true vs before/after (issue 8, heavy check).

Runs the whole analysis (read → link → panel → cohort → match → effects → cost-benefit) on ``synthetic_data/``
with one estimator, then

1. recomputes the cost-benefit from the *true* monthly effects in ``truth.json`` (months 1..12, same parameters and
   the same cost per participant as the run) and checks that each financier's true net lies inside the run's
   Monte Carlo interval (90 %);
2. computes the before/after return of the local calculations on the run's participants (months −3..−1 vs
   1..12) and checks that it exceeds the counterfactual (estimated) return for the public sector and society.

Usage: ``nice -n 10 .venv/bin/python benchmarks/bench_cost_benefit_synthetic.py [--window 2018-01 2022-06]``.
Prints timings, the three returns per financier and PASS/FAIL per check; exit code 1 on a failed check.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from finsam_effekt import cost_benefit as cb
from finsam_effekt import io, linkage, panel
from finsam_effekt.config import load_config, load_input_spec
from finsam_effekt.pipeline import run

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "synthetic_data"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", nargs=2, default=["2018-01", "2022-06"])
    ap.add_argument("--draws", type=int, default=2000)
    args = ap.parse_args()
    truth = json.loads((DATA / "truth.json").read_text(encoding="utf-8"))
    overrides = {"monte_carlo.n_draws": args.draws}
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "config.yaml"
        cfg_path.write_text(
            yaml.safe_dump(
                {
                    "inputs": str(DATA / "mapping.yaml"),
                    "window": {"start": args.window[0], "end": args.window[1]},
                    "estimators": ["weighted_mean_diff"],
                    "subgroups": [],
                    "event_study": False,
                    "sensitivity": False,
                    "cost_benefit": {
                        "parameters": str(ROOT / "configs" / "cost_benefit_parameters.yaml"),
                        "overrides": overrides,
                    },
                    "seed": 20240101,
                }
            ),
            encoding="utf-8",
        )
        t0 = time.perf_counter()
        res = run(load_config(cfg_path), Path(tmp) / "out", force=True)
        t_run = time.perf_counter() - t0
        for s in res.stages:
            print(f"  {s.name:<16}{s.status:<8}{'' if s.rows is None else s.rows:>10}{s.seconds:9.1f} s")
        cbf = pd.read_csv(Path(tmp) / "out" / "cost_benefit.csv")
    est = cbf[cbf["item"] == "net"].set_index(["perspective", "financier"])
    cost = -float(
        cbf.query("financier == 'public_sector_total' and item == 'cost'")["pv_sek_per_participant"].iloc[0]
    )
    params = cb.load_cost_benefit_parameters(ROOT / "configs" / "cost_benefit_parameters.yaml", overrides)

    att = truth["att"]["all"]
    rows = [
        {
            "outcome": o,
            "horizon_months": k,
            "measure": "status",
            "subgroup": "all",
            "estimator": "truth",
            "estimate": att[o][str(k)],
            "std_error": 0.0,
        }
        for o in cb.REQUIRED_OUTCOMES
        for k in range(1, 13)
    ]
    true_res = cb.cost_benefit(pd.DataFrame(rows), params, cost_per_participant_sek=cost)

    t1 = time.perf_counter()
    con, _ = io.read_inputs(load_input_spec(DATA / "mapping.yaml"))
    start, end = truth["window"]
    link = linkage.link_participants(
        con.table("sus_registrations"),
        con.table("population"),
        window=tuple(args.window),
        age_range=(16, 64),
        con=con,
        register_start=start,
        min_history_months=24,
    )
    paths = panel.outcome_paths(
        link.participants[["person_id", "ref_month"]],
        (-3, 12),
        spells=con.table("benefit_spells"),
        social_assistance=con.table("social_assistance"),
        earnings=con.table("earnings"),
        population=con.table("population"),
        end_month=end,
        con=con,
    )
    ba = cb.before_after_cost_benefit(paths, params, cost_per_participant_sek=cost)
    t_ba = time.perf_counter() - t1

    print(f"\nwhole run {t_run:.1f} s; before/after (link + paths + calculation) {t_ba:.1f} s")
    print(f"cost per participant {cost:,.0f} SEK ({params.price_base_year}); {len(paths)} path rows\n")
    true_net = pd.concat([true_res.net("public_finance"), true_res.net("socio_economic")])
    ba_net = pd.concat([ba.net("public_finance"), ba.net("socio_economic")])
    ok = True
    print(
        f"{'financier':<22}{'estimated':>11}{'90% interval':>26}{'true':>11}{'inside':>8}{'before/after':>14}"
    )
    for (_persp, fin), r in est.iterrows():
        inside = r["ci_lower"] <= true_net[fin] <= r["ci_upper"]
        ok &= bool(inside)
        print(
            f"{fin:<22}{r['pv_sek_per_participant']:>11,.0f}{f'[{r.ci_lower:,.0f}; {r.ci_upper:,.0f}]':>26}"
            f"{true_net[fin]:>11,.0f}{'yes' if inside else 'NO':>8}{ba_net[fin]:>14,.0f}"
        )
    print(
        f"\ncheck 1 (true return inside the Monte Carlo interval, every financier): {'PASS' if ok else 'FAIL'}"
    )
    ok2 = all(
        ba_net[f] > est.xs(f, level="financier")["pv_sek_per_participant"].iloc[0]
        for f in ("public_sector_total", "society")
    )
    print(f"check 2 (before/after return > estimated counterfactual return): {'PASS' if ok2 else 'FAIL'}")
    return 0 if ok and ok2 else 1


if __name__ == "__main__":
    sys.exit(main())
