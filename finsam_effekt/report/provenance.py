"""Provenance of a run: ``manifest.json`` (config, input hashes, versions, seed, timings) and atomic output.

:func:`atomic_output_dir` makes a run all-or-nothing: the outputs are written into a temporary sibling directory
that replaces the output directory only when every step succeeded.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, OutputError


def sha256_path(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (sorted relative names and contents)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode("utf-8") + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the package, Python and the runtime dependencies."""
    import platform
    from importlib import metadata

    names = [
        "finsam_effekt",
        "numpy",
        "pandas",
        "scipy",
        "statsmodels",
        "scikit-learn",
        "linearmodels",
        "pyreadstat",
        "pyarrow",
        "duckdb",
        "pydantic",
        "pyyaml",
        "matplotlib",
        "openpyxl",
        "jinja2",
    ]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def write_manifest(
    out_dir: Path,
    *,
    config: Mapping[str, Any],
    config_hash: str,
    inputs: Mapping[str, Path],
    seed: int,
    timings: Mapping[str, float],
    rows: Mapping[str, int | None],
    outputs: Sequence[Path] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """``manifest.json``: config and its hash, SHA-256 of every input, versions, seed, timings, rows per stage
    (None: blanked by disclosure control, ``report.disclosure.publishable_rows``).

    Everything but ``timings_seconds`` is identical between two runs of the same config on the same inputs.
    """
    out_dir = Path(out_dir)
    manifest = {
        "config": dict(config),
        "config_sha256": config_hash,
        "inputs": {name: {"path": str(p), "sha256": sha256_path(p)} for name, p in sorted(inputs.items())},
        "versions": package_versions(),
        "seed": seed,
        "rows": {k: None if v is None else int(v) for k, v in rows.items()},
        "outputs": sorted(str(Path(p).relative_to(out_dir)) for p in outputs),
        "timings_seconds": {k: round(float(v), 3) for k, v in timings.items()},
        **(dict(extra) if extra else {}),
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


#: Errors of the file system that mean "this output location cannot be written", with what to tell the user.
_OUTPUT_ERRNOS: dict[int, str] = {
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
    errno.EROFS: "the file system is read-only",
    errno.ENAMETOOLONG: "the path is too long for the file system",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
}


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_location(out: Path, protected: Sequence[Path]) -> None:
    """Refuse an output folder whose replacement could destroy something the run reads or needs.

    ``out`` must not equal or contain (lie above) any ``protected`` path — the input files and folders, the config
    file, the stage cache, the current directory — and must not lie inside an input *folder* (a folder of Parquet
    parts, which the output would join).
    """
    out = Path(out).resolve()
    for p in protected:
        p = Path(p).resolve()
        if _within(p, out):
            what = "is" if p == out else "contains"
            raise OutputError(
                f"--out {out} {what} {p}, which this run reads or needs; a run replaces its output folder, so "
                "choose an output folder that holds none of the inputs, the config or the current directory"
            )
        if p.is_dir() and _within(out, p) and p != Path.cwd().resolve():
            raise OutputError(
                f"--out {out} lies inside the input folder {p}; the outputs would mix with the input's files — "
                "choose an output folder outside it"
            )


def is_run_output(folder: Path) -> bool:
    """Whether ``folder`` is one a finsam-effekt run wrote (its ``manifest.json``) or empty — the only folders
    ``--force`` may replace."""
    folder = Path(folder)
    if not any(folder.iterdir()):
        return True
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"config_sha256", "outputs"} <= set(manifest)


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[Path]:
    """Hold ``.<out>.lock`` beside ``out`` while the block runs, so two runs never write one output folder.

    The lock file is created atomically (``O_EXCL``) and holds the host, process id and start time; a lock left by a
    process of this host that no longer runs is taken over."""
    lock = out.parent / f".{out.name}.lock"
    info = f"{socket.gethostname()} {os.getpid()} {time.strftime('%Y-%m-%d %H:%M:%S')}"
    for _attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                host, pid, *when = lock.read_text(encoding="utf-8").split()
                alive = host != socket.gethostname() or _pid_alive(int(pid))
            except (OSError, ValueError):
                host, pid, when, alive = "?", "?", [], True
            if alive:
                raise OutputError(
                    f"another finsam-effekt run (host {host}, process {pid}, started {' '.join(when)}) is writing "
                    f"to {out}; wait for it to finish, or delete {lock} if no run is active"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(info)
        break
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_output_dir(out: Path, force: bool = False, protected: Sequence[Path] = ()) -> Iterator[Path]:
    """Yield a temporary sibling directory of ``out``; rename it to ``out`` only when the block succeeds.

    A failed block removes the temporary directory, so a failed run leaves no ``out`` and nothing partial. Before
    anything is written: ``out`` is checked against ``protected`` (:func:`check_output_location`); an existing
    ``out`` is replaced only with ``force`` and only when an earlier run wrote it (:func:`is_run_output`); a lock
    beside ``out`` keeps a second run out (:func:`output_lock`). A file-system error of the output location
    (read-only, full, path too long, no permission) becomes an :class:`OutputError` naming the folder.
    """
    out = Path(out).resolve()
    check_output_location(out, protected)
    try:
        exists = out.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        raise _output_error(out, exc) from None
    if exists:
        if not out.is_dir():
            raise OutputError(f"--out {out} is a file, not a folder; choose a folder for the outputs")
        if not force:
            raise ConfigError(f"{out}: output directory exists; use --force to replace it")
        if not is_run_output(out):
            raise OutputError(
                f"--out {out} exists and is not a folder an earlier finsam-effekt run wrote (no manifest.json), so "
                "--force does not replace it; choose another output folder or empty it yourself"
            )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(out, exc) from None
    with output_lock(out):
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
        except OSError as exc:
            raise _output_error(out, exc) from None
        try:
            yield tmp
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno in _OUTPUT_ERRNOS and str(exc.filename or "").startswith(str(out.parent)):
                raise _output_error(out, exc) from None
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            if out.exists():
                old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
                out.rename(old)
                tmp.rename(out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(out)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _output_error(out, exc) from None


def _output_error(out: Path, exc: OSError) -> OutputError:
    reason = _OUTPUT_ERRNOS.get(exc.errno or 0, exc.strerror or str(exc))
    return OutputError(f"cannot write the output folder {out}: {reason}; choose another --out")
