"""``python -m finsam_effekt …``: the command line (:mod:`finsam_effekt.cli`)."""

from .cli import main

main()
