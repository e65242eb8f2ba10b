"""Progress within a long stage (issue 14 item 8): steps, the time left, listeners and run.log lines."""

from __future__ import annotations

import logging

import pytest

from finsam_effekt import progress
from finsam_effekt.progress import Progress, Tracker


def test_time_left_from_the_pace_so_far_and_the_text():
    t = [100.0]
    tracker = Tracker("history features, batch", 10, clock=lambda: t[0])
    seen: list[Progress] = []
    with progress.listening(seen.append):
        t[0] = 130.0
        p = tracker.step(3)  # 3 of 10 in 30 s: 70 s left
        t[0] = 250.0
        tracker.step(2)  # 5 of 10 in 150 s: 150 s left = about 2 min (rounded: 150 / 60 = 2.5 → "2")
    tracker.step()  # after the block: nobody listens
    assert [q.done for q in seen] == [3, 5] and p.seconds_left == pytest.approx(70.0)
    assert p.text() == "history features, batch: 3 of 10, about 70 s left"
    assert seen[1].text() == "history features, batch: 5 of 10, about 2 min left"
    assert Progress("x", 10, 10, 5.0).text() == "x: 10 of 10"  # done: no time left shown
    assert Progress("Newton iteration", 4, None, 5.0).text() == "Newton iteration: 4"  # no total: no estimate
    assert Progress("x", 0, 10, 0.0).seconds_left is None


def test_run_log_gets_a_line_at_most_every_30_seconds(caplog):
    t = [0.0]
    tracker = Tracker("balance, column", 100, clock=lambda: t[0])
    with caplog.at_level(logging.INFO, logger="finsam_effekt.run"):
        for s in (10.0, 20.0, 31.0, 40.0, 62.0):
            t[0] = s
            tracker.step()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert lines == [
        "progress: balance, column: 3 of 100, about 17 min left",  # 31 s / 3 · 97 = 1002 s
        "progress: balance, column: 5 of 100, about 20 min left",
    ]


def test_release_memory_flushes_engine_buffers_and_keeps_tables_and_limit():
    """Between stages the run lowers DuckDB's memory limit to what the engine uses (so it returns its freed
    buffers) and sets the configured limit back; tables stay, and a closed connection is no error."""
    import duckdb

    from finsam_effekt.pipeline.resources import release_memory

    con = duckdb.connect()
    con.execute("SET memory_limit = '3GB'")
    limit = con.sql("SELECT current_setting('memory_limit')").fetchone()[0]
    default = duckdb.connect().sql("SELECT current_setting('memory_limit')").fetchone()[0]
    con.execute("SET threads = 1")
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(2000000)")
    con.sql("SELECT x % 97 AS g, count(*) FROM t GROUP BY 1").fetchall()
    release_memory(con, "3GB")
    assert con.sql("SELECT current_setting('memory_limit')").fetchone()[0] == limit
    release_memory(con, None)  # no limit configured: DuckDB's default again
    assert con.sql("SELECT current_setting('memory_limit')").fetchone()[0] == default
    assert con.sql("SELECT count(*), sum(x) FROM t").fetchone() == (2_000_000, 2_000_000 * 1_999_999 // 2)
    con.close()
    release_memory(con)
    release_memory(None)
