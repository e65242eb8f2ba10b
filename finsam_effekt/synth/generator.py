"""Generating a world into a folder: the chunks, the files, the truth and the README.

Chunks are simulated here or by worker processes and streamed to the table writers in chunk order (so the files do
not depend on the number of workers); then come the volume and cost tables, ``mapping.yaml``, ``truth.json`` and
``README.md``. :func:`latent_person_months` runs the same chunks for the tests' panel oracle.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError
from ..io import WRITE_FORMATS, TableWriter, WriteFormat, canonical_arrow_table, write_input_spec
from ..schema import TABLES
from .config import SynthConfig, SynthResult
from .simulate import ChunkOut, simulate_chunk
from .sus import volume_and_costs
from .truth import ESTIMAND, truth_summary
from .world import World

#: Persons per simulated chunk. Part of the definition of a world: changing it changes the random streams.
CHUNK_PERSONS: int = 20_000
_PERSON_TABLES = ("population", "sus_registrations", "benefit_spells", "social_assistance", "earnings")


def latent_person_months(config: SynthConfig) -> pd.DataFrame:
    """The latent monthly outcomes of the world ``config`` (as ``docs/tables.md`` ``person_months``).

    One row per person and uncensored window month with any public support or earnings, columns ``person_id``,
    ``month`` and every outcome of ``schema.OUTCOMES``. The panel must reproduce these from the written tables;
    used by tests (it simulates the whole world again, so keep ``config.persons`` small).
    """
    config.validate()
    world = World(config)
    width = max(7, len(str(config.persons)))
    parts = []
    for chunk, first in enumerate(range(0, config.persons, CHUNK_PERSONS)):
        n = min(CHUNK_PERSONS, config.persons - first)
        parts.append(simulate_chunk(world, chunk, first, n, width, keep_latent=True).latent)
    return pd.concat(parts, ignore_index=True)


# the world of a worker process, built once per process by _init_worker
_WORKER_WORLD: World | None = None


def _init_worker(config: SynthConfig) -> None:
    global _WORKER_WORLD
    _WORKER_WORLD = World(config)


def _run_chunk(args: tuple[int, int, int, int]) -> ChunkOut:
    """Simulate one chunk in a worker process and hand back Arrow tables (cheap to pass between processes),
    built exactly as ``io.TableWriter`` builds them for Parquet (``io.canonical_arrow_table``)."""
    chunk, first, n, width = args
    assert _WORKER_WORLD is not None
    co = simulate_chunk(_WORKER_WORLD, chunk, first, n, width)
    co.tables = {t: canonical_arrow_table(df, t) for t, df in co.tables.items()}
    co.truth_participants = pa.Table.from_pandas(co.truth_participants, preserve_index=False)
    return co


def _chunk_results(world: World, config: SynthConfig, width: int, workers: int):
    """Yield ``(first, n, chunk output)`` in chunk order, simulated here or by ``workers`` processes."""
    jobs = [
        (chunk, first, min(CHUNK_PERSONS, config.persons - first), width)
        for chunk, first in enumerate(range(0, config.persons, CHUNK_PERSONS))
    ]
    if workers <= 1 or len(jobs) == 1:
        for chunk, first, n, _ in jobs:
            yield first, n, simulate_chunk(world, chunk, first, n, width)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(config,)) as pool:
        pending: deque = deque()
        it = iter(jobs)
        for job in it:
            pending.append((job, pool.submit(_run_chunk, job)))
            if len(pending) > workers:
                break
        while pending:
            job, fut = pending.popleft()
            co = fut.result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_run_chunk, nxt)))
            yield job[1], job[2], co


def generate(
    out_dir: Path | str,
    config: SynthConfig | None = None,
    fmt: WriteFormat = "parquet",
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> SynthResult:
    """Generate a synthetic register world into ``out_dir``.

    Writes every canonical table (``schema.TABLES``) in ``fmt`` plus ``mapping.yaml`` (the input spec that reads
    them), ``truth.json``, ``truth_participants.parquet``, ``truth_anonymous.parquet`` (``person_id`` and first
    start ``ref_month`` of every anonymous participant in the population: who the contaminated controls are, for
    validation only) and ``README.md``. Persons are simulated in chunks of
    :data:`CHUNK_PERSONS` and streamed to the writers, so memory stays bounded (SPSS/Stata excepted: they are
    written at the end). See the package docstring for the data-generating process.

    Parameters
    ----------
    out_dir : folder to write into (created if missing).
    config : :class:`SynthConfig`; the default is the shipped world.
    fmt : one of ``io.WRITE_FORMATS``.
    progress : called as ``progress(persons_done, persons_total)`` after each chunk.
    workers : processes simulating chunks in parallel (Parquet only; chunks are still written in order, so the
        files are byte-identical to ``workers=1``). At most ``workers + 1`` chunks are in memory at once.
    """
    config = config or SynthConfig()
    config.validate()
    if fmt not in WRITE_FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(WRITE_FORMATS)}, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = World(config)
    width = max(7, len(str(config.persons)))
    writers = {t: TableWriter(out, t, fmt) for t in _PERSON_TABLES}
    tp_path = out / "truth_participants.parquet"
    tp_writer: pq.ParquetWriter | None = None
    anonymous_parts = []
    sums: dict[str, dict[str, np.ndarray]] = {}
    counts: dict[str, np.ndarray] = {}
    n_part: dict[str, int] = {}
    reg_counts: dict[str, int] = {}
    cost_parts = []
    for first, n, co in _chunk_results(world, config, width, workers if fmt == "parquet" else 1):
        for t, df in co.tables.items():
            if isinstance(df, pa.Table):
                writers[t].write_arrow(df)
            else:
                writers[t].write(df)
        tab = co.truth_participants
        if not isinstance(tab, pa.Table):
            tab = pa.Table.from_pandas(tab, preserve_index=False)
        if tp_writer is None:
            tp_writer = pq.ParquetWriter(tp_path, tab.schema, compression="zstd")
        tp_writer.write_table(tab)
        for g, d in co.sums.items():
            for o, v in d.items():
                sums.setdefault(g, {}).setdefault(o, np.zeros_like(v))
                sums[g][o] = sums[g][o] + v
            counts[g] = counts.get(g, 0) + co.counts[g]
            n_part[g] = n_part.get(g, 0) + co.n_part[g]
        for k, v in co.reg_counts.items():
            reg_counts[k] = reg_counts.get(k, 0) + v
        cost_parts.append(co.cost_counts)
        anonymous_parts.append(co.anonymous)
        del co
        if progress is not None:
            progress(first + n, config.persons)
    volume, costs = volume_and_costs(world, pd.concat(cost_parts, ignore_index=True))
    for t, df in (("sus_volume", volume), ("insats_costs", costs)):
        writers[t] = TableWriter(out, t, fmt)
        writers[t].write(df)
    for w in writers.values():
        w.close()
    if tp_writer is not None:
        tp_writer.close()
    anonymous = pd.concat(anonymous_parts, ignore_index=True).astype({"person_id": str, "ref_month": str})
    pq.write_table(
        pa.Table.from_pandas(anonymous, preserve_index=False),
        out / "truth_anonymous.parquet",
        compression="zstd",
    )
    write_input_spec(out, fmt, list(TABLES))

    reg_counts["volume_participations"] = int(volume["participations"].sum())
    truth = truth_summary(config, sums, counts, n_part, reg_counts)
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    rows = {t: w.rows for t, w in writers.items()}
    paths = {t: w.path for t, w in writers.items()}
    res = SynthResult(out, config, fmt, rows, truth, paths)
    (out / "README.md").write_text(_readme(res), encoding="utf-8")
    return res


def _readme(res: SynthResult) -> str:
    cfg = res.config
    # the data-generating process is documented once, in the package docstring
    doc = importlib.import_module(__package__).__doc__ or ""
    dgp = doc[doc.index("Data-generating process") : doc.index("References")].rstrip()
    table = "\n".join(f"| `{t}` | {n} |" for t, n in res.rows.items())
    return f"""# Synthetic register world

Generated by `finsam_effekt.synth` (finsam_effekt). Regenerate it exactly — the files are byte-identical for the
same arguments, whatever folder `--out` names — with:

```bash
{cfg.command("synthetic_data", res.format)}
```

Every table follows the canonical schema (`finsam_effekt/schema.py`); `mapping.yaml` is the input spec that reads
them. `truth.json` holds the true effects (estimand below), `truth_anonymous.parquet` the anonymous participants
in the population (person and first start month: who would be a contaminated control; for validation only, no
analysis may read it), `truth_participants.parquet` the individual true
effects of every linkable participant at 3, 6 and 12 months (NaN when censored): columns `{{o}}_m{{k}}` (status in
month u+k) and `{{o}}_cum{{k}}` (sum over months u+1..u+k) against no insats during follow-up (the estimand of
`later_treated: censor`), and `{{o}}_m{{k}}_not_now` / `{{o}}_cum{{k}}_not_now` against not starting in month u but
possibly later (`truth.json` `att_not_now`: the estimand of `later_treated: keep`).

| table | rows |
|---|---|
{table}

{res.summary().replace(str(res.out_dir), "this folder")}

Estimand: {ESTIMAND}

{dgp}
"""


def file_hashes(folder: Path | str) -> dict[str, str]:
    """SHA-256 of every file in ``folder`` (name -> hex digest), for determinism checks."""
    folder = Path(folder)
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir()) if f.is_file()
    }
