"""Command-line interface: ``finsam-effekt COMMAND``.

Each command composes pipeline stages; user mistakes (:class:`~finsam_effekt.errors.FinsamError`) become a
one-paragraph message and exit code 1, usage errors exit code 2.
"""

from __future__ import annotations

import signal
import sys
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from .errors import FinsamError
from .options import LANGUAGES, WRITE_FORMATS

app = typer.Typer(
    name="finsam-effekt",
    help="Effects and cost-benefit of Finsam insatser on public support (försörjning), from SUS and "
    "MiDAS-style registers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """finsam-effekt: read → validate → link → panel → match → balance → effects → cost-benefit → report."""


#: Report languages as a CLI choice (the vocabulary is ``options.LANGUAGES``).
_Lang = StrEnum("_Lang", {lang: lang for lang in LANGUAGES})


@app.command("run")
def run_command(
    config: Path = typer.Argument(..., help="analysis config YAML (see configs/analysis_template.yaml)"),
    out: Path = typer.Option(..., "--out", help="output directory (written atomically)"),
    lang: _Lang | None = typer.Option(None, "--lang", help="report language (default: the config's, sv)"),
    force: bool = typer.Option(False, "--force", help="replace an existing output directory"),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="compute every stage afresh and store nothing in the stage cache"
    ),
    by: str | None = typer.Option(
        None, "--by", help="forbund_id: also one report per samordningsförbund and an overview (out/forbund/)"
    ),
) -> None:
    """Run the configured analysis end to end and write report.html, CSV/Excel tables, figures and manifest.json.

    Exit codes: 0 ok, 1 input or config error (nothing is written), 2 usage error.
    """
    from rich.table import Table

    from .config import load_config
    from .pipeline import run

    cfg = load_config(config, language=lang.value if lang else None)
    if no_cache:
        cfg = cfg.model_copy(update={"cache": cfg.cache.model_copy(update={"enabled": False})})
    console = Console(stderr=True)
    # SIGTERM (e.g. a batch system's time limit) unwinds like Ctrl-C, so the partial output is removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    status = console.status("starting")

    def started(name: str) -> None:
        status.update(f"[bold]{name}[/] …")

    def finished(rec) -> None:
        rows = "" if rec.rows is None else f"{rec.rows:>12,}".replace(",", " ") + " rows"
        mark = "[green]✓[/]" if rec.status == "ok" else "[yellow]–[/]"
        note = f"  [dim]{rec.note}[/]" if rec.note else ""
        console.print(f"{mark} {rec.name:<16} {rows:>18} {rec.seconds:7.2f} s{note}", highlight=False)

    with status:
        res = run(cfg, out, force=force, by=by, on_start=started, on_stage=finished)
    table = Table(title="finsam-effekt run", show_lines=False)
    for c in ("stage", "status", "rows", "seconds"):
        table.add_column(c, justify="right" if c in ("rows", "seconds") else "left")
    for r in res.stages:
        table.add_row(r.name, r.status, "" if r.rows is None else str(r.rows), f"{r.seconds:.2f}")
    console.print(table)
    console.print(
        f"total {sum(r.seconds for r in res.stages):.1f} s → {res.out / 'report.html'}", highlight=False
    )


@app.command("explain")
def explain_command(
    config: Path = typer.Argument(..., help="analysis config YAML"),
    lang: _Lang | None = typer.Option(None, "--lang", help="language of the estimand text"),
) -> None:
    """Print the resolved config, the estimand in words and what each stage will do (reads no data)."""
    from .config import load_config
    from .pipeline import explain

    cfg = load_config(config, language=lang.value if lang else None)
    typer.echo(explain(cfg))


@app.command("cost-benefit")
def cost_benefit_command(
    effects: Path = typer.Argument(..., help="effects table (CSV or Parquet) as EffectResults.to_frame()"),
    out: Path = typer.Option(..., "--out", help="output directory for tables, figures and summary.txt"),
    params: Path | None = typer.Option(None, "--params", help="parameters YAML (default: the shipped one)"),
    cost: float | None = typer.Option(None, "--cost", help="cost per participant, SEK of price_base_year"),
    estimator: str | None = typer.Option(None, "--estimator", help="estimator to use when there are several"),
    paths: Path | None = typer.Option(
        None, "--paths", help="participants' outcome_paths (CSV/Parquet): adds the before/after comparison"
    ),
) -> None:
    """Cost-benefit per financier from an effects table (public finance and socio-economic, never summed)."""
    import pandas as pd

    from . import cost_benefit as cb
    from .errors import InputError

    def read(p: Path) -> pd.DataFrame:
        if not p.is_file():
            raise InputError(f"{p}: file not found")
        return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)

    res = cb.cost_benefit(
        read(effects),
        cb.load_cost_benefit_parameters(params),
        cost_per_participant_sek=cost,
        estimator=estimator,
        before_after_paths=read(paths) if paths is not None else None,
    )
    out.mkdir(parents=True, exist_ok=True)
    res.to_frame().to_csv(out / "cost_benefit.csv", index=False)
    res.break_even_frame().to_csv(out / "cost_benefit_break_even.csv", index=False)
    res.monte_carlo_frame().to_csv(out / "cost_benefit_monte_carlo.csv", index=False)
    res.sensitivity_frame().to_csv(out / "cost_benefit_sensitivity.csv", index=False)
    if res.before_after is not None:
        res.comparison_frame().to_csv(out / "cost_benefit_before_after.csv", index=False)
    import matplotlib.pyplot as plt

    for fin in ("state", "region", "kommun", "public_sector_total", "society"):
        for kind, fig in (("waterfall", res.waterfall_figure(fin)), ("tornado", res.tornado_figure(fin))):
            fig.savefig(out / f"{kind}_{fin}.png", dpi=120)
            plt.close(fig)
    (out / "summary.txt").write_text(res.summary() + "\n", encoding="utf-8")
    typer.echo(res.summary())


@app.command("validate")
def validate_command(
    config: Path = typer.Argument(
        ..., help="input spec YAML (e.g. mapping.yaml) or analysis config with `inputs:`"
    ),
) -> None:
    """Check every input file (read-only) and print a report: table, rows, problems.

    Exit codes: 0 all inputs usable (warnings allowed), 1 some input has an error, 2 usage error. Writes nothing.
    """
    from rich.table import Table

    from .config import load_config, load_input_spec, load_yaml
    from .io import ANALYSIS_TABLES, validate_inputs

    analysis = "inputs" in load_yaml(config)
    spec = load_config(config).input_spec if analysis else load_input_spec(config)
    # an analysis needs every register table; a bare input spec may check a few files
    report = validate_inputs(spec, required=ANALYSIS_TABLES if analysis else ())
    console = Console()
    table = Table(title=f"finsam-effekt validate {config}")
    for c in ("table", "file", "rows", "errors", "warnings"):
        table.add_column(c, justify="right" if c in ("rows", "errors", "warnings") else "left")
    for r in report.table_frame().itertuples():
        rows = "-" if r.rows is None or r.rows != r.rows else f"{int(r.rows):,}".replace(",", " ")
        err = f"[red]{r.errors}[/]" if r.errors else "0"
        table.add_row(r.table, Path(r.file).name, rows, err, str(r.warnings))
    console.print(table)
    for p in report.problems:
        color = "red" if p.severity == "error" else "yellow"
        console.print(f"[{color}]{p.severity}:[/] {p}", highlight=False, soft_wrap=True)
    if not report.ok:
        console.print(
            f"[bold red]{len(report.errors)} error(s): the inputs are not usable[/]", highlight=False
        )
        raise typer.Exit(1)
    console.print("[green]all inputs usable[/]", highlight=False)


@app.command("synth")
def synth_command(
    out: Path = typer.Option(..., "--out", help="folder to write the synthetic world into"),
    persons: int = typer.Option(60_000, "--persons", help="number of persons in the population"),
    seed: int = typer.Option(2024, "--seed", help="random seed (same arguments give identical files)"),
    start: str = typer.Option("2016-01", "--start", help="first month of the register window (YYYY-MM)"),
    end: str = typer.Option("2023-12", "--end", help="last month of the register window (YYYY-MM)"),
    fmt: str = typer.Option(
        "parquet",
        "--format",
        help=f"{' | '.join(WRITE_FORMATS)} (mapping.yaml reads it)",
    ),
    effect_scale: float = typer.Option(
        1.0, "--effect-scale", help="scale of the true effect (0 = no effect)"
    ),
    hidden_confounding: float = typer.Option(
        0.0, "--hidden-confounding", help="strength of an unobserved trait driving entry and outcomes"
    ),
) -> None:
    """Generate a synthetic SUS/MiDAS register world with known true effects (truth.json) and print a summary."""
    from .synth import SynthConfig, generate

    cfg = SynthConfig(
        persons=persons,
        seed=seed,
        start=start,
        end=end,
        effect_scale=effect_scale,
        hidden_confounding=hidden_confounding,
    )
    res = generate(out, cfg, fmt)  # type: ignore[arg-type]
    typer.echo(res.summary())


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except FinsamError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except MemoryError:
        err_console.print(
            "[bold red]error:[/] the run ran out of memory; lower engine.memory_limit in the config (DuckDB then "
            "spills to disk), or lower eligibility.candidate_sample_rate",
            highlight=False,
        )
        sys.exit(1)
    except OSError as exc:  # the environment, not the package: say what and where, without a traceback
        where = f" {exc.filename}" if exc.filename else ""
        err_console.print(
            f"[bold red]error:[/] cannot read or write{where}: {exc.strerror or exc}", highlight=False
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
