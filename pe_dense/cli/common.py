"""Console helpers shared by the sub-commands (no heavy imports)."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["written_files", "written_lines", "print_written", "now", "error_lines"]


def written_files(folder: str | os.PathLike, since: float) -> list[Path]:
    """Files under ``folder`` modified at or after ``since`` (a ``time.time()``), sorted."""
    root = Path(folder)
    if root.is_file():
        return [root] if root.stat().st_mtime >= since else []
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime >= since)


def written_lines(folder: str | os.PathLike, since: float, limit: int = 12) -> list[str]:
    """``results in FOLDER (N files):`` and up to ``limit`` of the files, relative to it."""
    files = written_files(folder, since)
    root = Path(folder)
    if not files:
        return [f"results in {root}: no new files"]
    base = root.parent if root.is_file() else root
    lines = [f"results in {root} ({len(files)} file{'s' if len(files) > 1 else ''}):"]
    lines += [f"  {p.relative_to(base)}" for p in files[:limit]]
    if len(files) > limit:
        lines.append(f"  ... and {len(files) - limit} more")
    return lines


def print_written(folder: str | os.PathLike | None, since: float) -> None:
    """Print :func:`written_lines` (nothing when ``folder`` is None)."""
    if folder is not None:
        print("\n".join(written_lines(folder, since)))


def now() -> float:
    """The time stamp to pass as ``since`` (a second early: file systems round mtimes)."""
    return time.time() - 1.0


def error_lines(command: str, exc: BaseException, verbose: bool) -> list[str]:
    """What the CLI prints for an error: ``pe-dense CMD: error: ...``; with ``verbose`` the
    error's full ``details`` (e.g. every mismatching key) too, else where to find them."""
    lines = [f"pe-dense {command}: error: {exc}"]
    details = getattr(exc, "details", "")
    if details and verbose:
        lines.append(details)
    elif details:
        lines.append(f"(full list: pe-dense --verbose {command} ...; a traceback: pe-dense "
                     f"--debug {command} ...)")
    return lines
