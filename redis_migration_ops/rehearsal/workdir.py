"""A rehearsal's working directory, owned for the rehearsal's life.

:func:`claim_workdir` takes an exclusive ``flock`` on ``<workdir>/.rehearsal.lock`` (the file also
names the owner's pid) and holds it until the ``with`` block ends, or until the process dies in
any way: the kernel drops the lock with the last descriptor, so a SIGKILLed rehearsal never
leaves a workdir locked. A second rehearsal on the same workdir while the first runs is refused
with the owner's pid; a workdir left by a rehearsal that is gone is cleaned of that run's
artefacts first (report, history, logs, the sandbox directory), so two runs never mix. Only
known artefact names are removed: a workdir may be any directory the operator chose.

The descriptor is opened close-on-exec (Python's default), so the sandbox's processes never
inherit the lock and cannot keep it after the rehearsal.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

LOCK_NAME = ".rehearsal.lock"
# What a rehearsal writes in its workdir (the lead adds names here when the rehearsal writes more).
# "elasticache" is the ElastiCache stand-in's folder (its data): a reused workdir starts with an empty cache.
ARTIFACTS: tuple[str, ...] = (
    "report.json",
    "history.json",
    "function-logs.jsonl",
    "host",
    "elasticache",
    "ledger.jsonl",
    "decommission-history.json",
)


class WorkdirError(RuntimeError):
    """The workdir cannot be used; the message is one line, fit for the CLI."""


class WorkdirInUse(WorkdirError):
    """Another rehearsal that is still running owns the workdir."""


@dataclass(frozen=True)
class WorkdirClaim:
    """A claimed workdir and what was cleaned from a previous (finished or killed) run."""

    path: Path
    cleaned: list[str] = field(default_factory=list)


def _owner(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text().strip()
    except OSError:
        return "unknown pid"
    return f"pid {pid}" if pid.isdigit() else "unknown pid"


def _clean(path: Path, artifacts: tuple[str, ...]) -> list[str]:
    cleaned = []
    for name in artifacts:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            # A sandbox directory is only a mount point on this machine (its tmpfs lived in the
            # sandbox's mount namespace, gone with it); refuse to recurse into a live mount.
            if target.is_mount():
                raise WorkdirError(f"--workdir {path}: {target} is still mounted; unmount it first")
            shutil.rmtree(target)
            cleaned.append(name)
        elif target.exists() or target.is_symlink():
            target.unlink()
            cleaned.append(name)
    return cleaned


@contextlib.contextmanager
def claim_workdir(path: Path, *, artifacts: tuple[str, ...] = ARTIFACTS) -> Iterator[WorkdirClaim]:
    """Own ``path`` for the ``with`` block: refused when another running rehearsal owns it,
    cleaned of a previous run's artefacts otherwise. Raises :class:`WorkdirError` (one line)."""
    if path.exists() and not path.is_dir():
        raise WorkdirError(f"--workdir {path}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WorkdirError(f"--workdir {path}: cannot create it ({error.strerror})") from None
    lock_path = path / LOCK_NAME
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise WorkdirError(f"--workdir {path}: cannot open {LOCK_NAME} ({error.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkdirInUse(
                f"--workdir {path} is in use by a running rehearsal ({_owner(lock_path)})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        cleaned = _clean(path, artifacts)
        try:
            yield WorkdirClaim(path=path, cleaned=cleaned)
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock
