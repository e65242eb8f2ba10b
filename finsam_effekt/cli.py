"""Command-line interface: ``finsam-effekt COMMAND``.

Each command composes pipeline stages; user mistakes (:class:`~finsam_effekt.errors.FinsamError`) become a
one-paragraph message and exit code 1, usage errors exit code 2.
"""

from __future__ import annotations

import sys

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


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except FinsamError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
