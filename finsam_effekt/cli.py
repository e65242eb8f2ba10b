"""Command-line interface: ``finsam-effekt COMMAND``.

Each command composes pipeline stages; user mistakes (:class:`~finsam_effekt.errors.FinsamError`) become a
one-paragraph message and exit code 1, usage errors exit code 2.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from .errors import FinsamError

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


class _Lang(StrEnum):
    sv = "sv"
    en = "en"


@app.command("run")
def run_command(
    config: Path = typer.Argument(..., help="analysis config YAML (see configs/analysis_template.yaml)"),
    out: Path = typer.Option(..., "--out", help="output directory (written atomically)"),
    lang: _Lang | None = typer.Option(None, "--lang", help="report language (default: the config's, sv)"),
    force: bool = typer.Option(False, "--force", help="replace an existing output directory"),
) -> None:
    """Run the configured analysis end to end and write report.html, CSV/Excel tables, figures and manifest.json.

    Exit codes: 0 ok, 1 input or config error (nothing is written), 2 usage error.
    """
    from rich.table import Table

    from .config import load_config
    from .pipeline import run

    cfg = load_config(config, language=lang.value if lang else None)
    console = Console(stderr=True)
    status = console.status("starting")

    def started(name: str) -> None:
        status.update(f"[bold]{name}[/] …")

    def finished(rec) -> None:
        rows = "" if rec.rows is None else f"{rec.rows:>12,}".replace(",", " ") + " rows"
        mark = "[green]✓[/]" if rec.status == "ok" else "[yellow]–[/]"
        note = f"  [dim]{rec.note}[/]" if rec.note else ""
        console.print(f"{mark} {rec.name:<16} {rows:>18} {rec.seconds:7.2f} s{note}", highlight=False)

    with status:
        res = run(cfg, out, force=force, on_start=started, on_stage=finished)
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


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except FinsamError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
