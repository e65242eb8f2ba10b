"""Command-line interface: ``finsam-effekt COMMAND``.

Each command composes pipeline stages; user mistakes (:class:`~finsam_effekt.errors.FinsamError`) become a
one-paragraph message and exit code 1, usage errors exit code 2.
"""

from __future__ import annotations

import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from .errors import FinsamError
from .options import LANGUAGES, WRITE_FORMATS
from .schema import DEFAULT_DISCLOSURE_THRESHOLD

if TYPE_CHECKING:
    from .config import AnalysisConfig

app = typer.Typer(
    name="finsam-effekt",
    help="Effects and cost-benefit of Finsam insatser on public support (försörjning), from SUS and "
    "MiDAS-style registers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags shown as flags (--force), options with their metavar (--out DIR)
)
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """finsam-effekt: read → validate → link → panel → match → balance → effects → cost-benefit → report."""


#: Report languages as a CLI choice (the vocabulary is ``options.LANGUAGES``).
_Lang = StrEnum("_Lang", {lang: lang for lang in LANGUAGES})


def load_run_config(path: Path, language: str | None = None) -> tuple[AnalysisConfig, str]:
    """The config of ``path`` (relative paths against its folder) and a line saying which cost-benefit parameters
    file is used.

    A config copied from ``configs/analysis_template.yaml`` names the package's parameters file
    (``cost_benefit_parameters.yaml``) relative to ``configs/``; when no such file is beside the copy, the
    package's own default parameters are used (and the line says so). Any other missing file is an error.
    """
    from .config import DEFAULT_PARAMETERS_FILE, load_yaml, parse_config

    data = load_yaml(path)
    if language is not None:
        data = {**data, "language": language}
    cb = data.get("cost_benefit")
    named = cb.get("parameters") if isinstance(cb, dict) else None
    note = ""
    if isinstance(named, str) and named:
        target = Path(named) if Path(named).is_absolute() else path.resolve().parent / named
        if not target.is_file() and Path(named).name == DEFAULT_PARAMETERS_FILE.name:
            default = DEFAULT_PARAMETERS_FILE if DEFAULT_PARAMETERS_FILE.is_file() else None
            data = {**data, "cost_benefit": {**cb, "parameters": None if default is None else str(default)}}
            note = (
                f"cost-benefit parameters: {target} not found; using the package's default parameters "
                f"({default or 'built in, the values of configs/cost_benefit_parameters.yaml'})"
            )
    cfg = parse_config(data, path.resolve().parent, str(path))
    cfg._source = path.resolve()  # so the run never writes over its own config
    if not note:
        used = cfg.cost_benefit.parameters or DEFAULT_PARAMETERS_FILE
        note = f"cost-benefit parameters: {used}"
    return cfg, note


@app.command("run")
def run_command(
    config: Path = typer.Argument(
        ..., metavar="CONFIG", help="analysis config YAML (see configs/analysis_template.yaml)"
    ),
    out: Path = typer.Option(..., "--out", metavar="DIR", help="output directory (written atomically)"),
    lang: _Lang | None = typer.Option(None, "--lang", help="report language (default: the config's, sv)"),
    force: bool = typer.Option(
        False, "--force", metavar="", help="replace an existing output directory (one an earlier run wrote)"
    ),
    no_cache: bool = typer.Option(
        False,
        "--no-cache",
        metavar="",
        help="compute every stage afresh and store nothing in the stage cache",
    ),
    by: str | None = typer.Option(
        None,
        "--by",
        metavar="FIELD",
        help="forbund_id: also one report per samordningsförbund and an overview (DIR/forbund/)",
    ),
) -> None:
    """Run the configured analysis end to end and write report.html, CSV/Excel tables, figures and manifest.json.

    Exit codes: 0 ok, 1 input or config error (nothing is written), 2 usage error.
    """
    from . import progress
    from .pipeline import CHAIN, run
    from .report import rows_text

    cfg, params_note = load_run_config(config, lang.value if lang else None)
    if no_cache:
        cfg = cfg.model_copy(update={"cache": cfg.cache.model_copy(update={"enabled": False})})
    console = Console(stderr=True)
    console.print(params_note, highlight=False, soft_wrap=True)
    # SIGTERM (e.g. a batch system's time limit) unwinds like Ctrl-C, so the partial output is removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    status = console.status("starting")
    current = ["starting"]

    def started(name: str) -> None:
        current[0] = name
        status.update(f"[bold]{name}[/] …")

    def within(p: progress.Progress) -> None:  # steps within a long stage, with the time left
        status.update(f"[bold]{current[0]}[/] … {p.text()}")

    width = max(len(s.label) for s in CHAIN)

    def finished(rec) -> None:  # the one stage table: a row per stage as it finishes
        shown = rows_text(rec.name, rec.rows, cfg.disclosure_threshold)  # a small person count as "<t"
        rows = (
            ""
            if rec.rows is None
            else (f"{rec.rows:>12,}".replace(",", " ") if shown == str(rec.rows) else shown)
        )
        rows += " rows" if rows else ""
        mark = "[green]✓[/]" if rec.status == "ok" else "[yellow]–[/]"
        note = f"  [dim]{rec.note}[/]" if rec.note else ""
        console.print(f"{mark} {rec.name:<{width}} {rows:>18} {rec.seconds:7.2f} s{note}", highlight=False)

    with status, progress.listening(within):
        res = run(cfg, out, force=force, by=by, on_start=started, on_stage=finished)
    for line in run_summary(res, cfg.language):
        console.print(line, highlight=False, soft_wrap=True)


def run_summary(res, lang: str) -> list[str]:
    """The console's summary after a run: validation warnings, design warnings, stages that did not run, the
    total time and the report's path (the stage rows are printed as the stages finish)."""
    from .pipeline import design_warnings

    lines = []
    results = res.results
    validation = [] if results is None or results.read is None else list(results.read.validation.warnings)
    if validation:
        lines.append(f"[yellow]{len(validation)} validation warning(s):[/]")
        lines += [f"  [yellow]![/] {w}" for w in validation]
    design = [] if results is None else [w.text(lang) for w in design_warnings(results)]
    if design:
        lines.append(f"[red]{len(design)} design warning(s) (also at the top of report.html):[/]")
        lines += [f"  [red]![/] {w}" for w in design]
    total = sum(r.seconds for r in res.stages)
    lines.append(f"total {total:.1f} s → {res.out / 'report.html'}")
    return lines


@app.command("explain")
def explain_command(
    config: Path = typer.Argument(..., metavar="CONFIG", help="analysis config YAML"),
    lang: _Lang | None = typer.Option(None, "--lang", help="language of the estimand text"),
) -> None:
    """Print the resolved config, the estimand in words and what each stage will do (reads no data)."""
    from .pipeline import explain

    cfg, params_note = load_run_config(config, lang.value if lang else None)
    typer.echo(explain(cfg))
    typer.echo(params_note)


@app.command("cost-benefit")
def cost_benefit_command(
    effects: Path = typer.Argument(
        ...,
        metavar="INPUTS",
        help="a run's cost_benefit_inputs.json (gives the run's numbers), or an effects table (CSV or Parquet) "
        "as EffectResults.to_frame() with monthly status effects",
    ),
    out: Path = typer.Option(
        ..., "--out", metavar="DIR", help="output directory for tables, figures, summary"
    ),
    params: Path | None = typer.Option(
        None,
        "--params",
        metavar="YAML",
        help="parameters YAML (default: the run's, from cost_benefit_inputs.json; else the package's)",
    ),
    cost: float | None = typer.Option(
        None,
        "--cost",
        metavar="SEK",
        help="cost per participant, SEK of price_base_year (default: the run's)",
    ),
    estimator: str | None = typer.Option(
        None, "--estimator", metavar="NAME", help="estimator to use when the effects table has several"
    ),
    paths: Path | None = typer.Option(
        None,
        "--paths",
        metavar="FILE",
        help="participants' person-level outcome_paths (CSV/Parquet): adds the before/after comparison",
    ),
    lang: _Lang = typer.Option(_Lang("sv"), "--lang", help="language of the figures"),
    threshold: int = typer.Option(
        DEFAULT_DISCLOSURE_THRESHOLD,
        "--threshold",
        metavar="N",
        help="disclosure threshold: nothing resting on fewer persons is written (as the run's disclosure_threshold)",
    ),
) -> None:
    """Cost-benefit per financier (public finance and socio-economic, never summed), from a run's
    cost_benefit_inputs.json (the same numbers as the run with the same parameters) or an effects table."""
    import pandas as pd

    from . import cost_benefit as cb
    from .cost_benefit.results import CostBenefitInputs
    from .errors import InputError
    from .pipeline.results import CostBenefitResult
    from .report import apply_disclosure_control, write_csv

    def read(p: Path) -> pd.DataFrame:
        if not p.is_file():
            raise InputError(f"{p}: file not found")
        return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)

    if not effects.is_file():
        raise InputError(f"{effects}: file not found")
    notes: list[str] = []
    if effects.suffix == ".json":
        inputs = CostBenefitInputs.from_json(effects.read_text(encoding="utf-8"))
        parameters = cb.load_cost_benefit_parameters(params) if params is not None else inputs.parameters
        if estimator is not None and estimator != inputs.estimator:
            raise InputError(
                f"--estimator {estimator}: {effects.name} holds the effects of {inputs.estimator!r} only"
            )
        frame, chosen = inputs.effects, inputs.estimator
        cost_sek = inputs.cost_per_participant_sek if cost is None else cost
        draws = inputs.draws(parameters.monte_carlo.n_draws)
    else:
        frame = read(effects)
        parameters = cb.load_cost_benefit_parameters(params)
        chosen, cost_sek, draws = _checked_table(frame, estimator, cost, parameters, notes)
    res = cb.cost_benefit(
        frame,
        parameters,
        cost_per_participant_sek=cost_sek,
        draws=draws,
        estimator=chosen,
        before_after_paths=read(paths) if paths is not None else None,
    )
    out.mkdir(parents=True, exist_ok=True)
    # the run's tables, with the persons behind them and the run's disclosure control: they compare byte for byte
    stage = CostBenefitResult(res)
    tables = dict(stage.report_tables())
    n_treated, n_control = stage.persons()
    if n_treated != n_treated:  # an effects table, not a run's inputs: the persons are in its rows
        rows = frame if chosen is None else frame[frame["estimator"] == chosen]
        n_treated, n_control = rows["n_treated"].min(), rows["n_control"].min()
    extra = {
        "cost_benefit_break_even": res.break_even_frame(),
        "cost_benefit_monte_carlo": res.monte_carlo_frame(),
    }
    tables |= {k: v.assign(n_treated=n_treated, n_control=n_control) for k, v in extra.items()}
    for k in tables:
        if k != "cost_benefit_by_subgroup" and {"n_treated", "n_control"} <= set(tables[k].columns):
            tables[k] = tables[k].assign(n_treated=n_treated, n_control=n_control)
    for name, df in apply_disclosure_control(tables, threshold).items():
        write_csv(df, out / f"{name}.csv")
    if not min(n_treated, n_control) >= threshold:  # NaN (unknown) counts as too few
        typer.echo(
            f"the cost-benefit rests on fewer than {threshold} persons: its tables are written suppressed, and no "
            "figures or summary are written"
        )
        return
    import matplotlib.pyplot as plt

    for fin in ("state", "region", "kommun", "public_sector_total", "society"):
        for kind, fig in (
            ("waterfall", res.waterfall_figure(fin, lang=lang.value)),
            ("tornado", res.tornado_figure(fin, lang=lang.value)),
        ):
            fig.savefig(out / f"{kind}_{fin}.png", dpi=120)
            plt.close(fig)
    (out / "summary.txt").write_text(res.summary() + "\n", encoding="utf-8")
    typer.echo(res.summary())
    for n in notes:
        typer.echo(f"note: {n}")


def _checked_table(
    frame, estimator: str | None, cost: float | None, parameters, notes: list[str]
) -> tuple[str | None, float | None, None]:
    """The estimator, cost and draws for an effects table, checked with messages that name the flags."""
    from .errors import InputError

    need = {"outcome", "horizon_months", "measure", "estimator", "estimate"}
    if not need <= set(frame.columns):
        raise InputError(
            f"the effects table lacks column(s) {sorted(need - set(frame.columns))}; pass EffectResults.to_frame() "
            "or a run's cost_benefit_inputs.json"
        )
    persons = {"n_treated", "n_control"} - set(frame.columns)
    if persons:
        raise InputError(
            f"the effects table lacks column(s) {sorted(persons)}: the persons behind each effect, which the "
            "disclosure control (--threshold) needs before anything is written. Add them (a run's effects.csv and "
            "EffectResults.to_frame() have them), or pass the run's cost_benefit_inputs.json"
        )
    status = frame[frame["measure"] == "status"]
    found = sorted(status["estimator"].dropna().unique())
    if estimator is None and len(found) > 1:
        raise InputError(
            f"the effects table has several estimators {found}; choose one with --estimator NAME"
        )
    if estimator is not None and estimator not in found:
        raise InputError(f"--estimator {estimator}: not in the effects table; it has {found}")
    if cost is None and parameters.cost_per_participant_sek is None:
        raise InputError(
            "no cost per participant: give --cost SEK (a run states its cost in report.html and in "
            "cost_benefit_inputs.json, which this command also reads), or set cost_per_participant_sek in the "
            "--params file"
        )
    months = sorted(int(k) for k in status["horizon_months"].dropna().unique())
    if months and months != list(range(1, max(months) + 1)):
        notes.append(
            f"the effects table has status effects at months {months} only; the months between are interpolated, "
            "so the numbers differ from a run's (which estimates every month 1..12). Pass the run's "
            "cost_benefit_inputs.json to reproduce them."
        )
    return estimator, cost, None


@app.command("validate")
def validate_command(
    config: Path = typer.Argument(
        ..., metavar="CONFIG", help="input spec YAML (e.g. mapping.yaml) or analysis config with `inputs:`"
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
    out: Path = typer.Option(..., "--out", metavar="DIR", help="folder to write the synthetic world into"),
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
    except RuntimeError as exc:
        # a termination signal (SystemExit from the SIGTERM handler) or Ctrl-C inside a DuckDB query reaches here
        # as the engine's "Query interrupted", caused by the exit: stop as the signal asked, without a traceback
        stop = exc.__cause__ or exc.__context__
        if not isinstance(stop, SystemExit | KeyboardInterrupt):
            raise
        err_console.print(
            "[bold red]error:[/] the run was stopped by a signal; its partial output was removed"
        )
        sys.exit(stop.code if isinstance(stop, SystemExit) and isinstance(stop.code, int) else 130)
    except OSError as exc:  # the environment, not the package: say what and where, without a traceback
        where = f" {exc.filename}" if exc.filename else ""
        err_console.print(
            f"[bold red]error:[/] cannot read or write{where}: {exc.strerror or exc}", highlight=False
        )
        sys.exit(1)
    except Exception as exc:
        # the engine's own out-of-memory error (duckdb.OutOfMemoryException; duckdb is not imported here): a
        # setting to change, not a defect to report
        if type(exc).__name__ != "OutOfMemoryException":
            raise
        err_console.print(
            f"[bold red]error:[/] the engine (DuckDB) ran out of its memory limit ({str(exc).splitlines()[0]}); "
            "raise engine.memory_limit in the config if the machine has the memory, or lower engine.threads (each "
            "thread needs working memory of its own); no report was written",
            highlight=False,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
