"""finsam_effekt: effects and cost-benefit of Finsam insatser on public support (försörjning).

Pipeline stages, one module each: ``synth`` → ``io`` → ``linkage`` → ``panel`` → ``cohort`` → ``matching`` →
``balance`` → ``estimation`` → ``cost_benefit`` → ``report``, composed by ``config`` and ``cli``.
The canonical tables are described in :mod:`finsam_effekt.schema`; derived tables in ``docs/tables.md``.
"""

__version__ = "0.1.0"
