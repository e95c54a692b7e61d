"""The sandbox host's control groups: where its stand-in systemd applies a unit's resource limits.

On an EC2 instance systemd puts every service in its own cgroup (``/system.slice/<unit>``) and
writes the unit's ``MemoryMax=``, ``MemoryHigh=``, ``CPUWeight=`` and ``IOWeight=`` there
(systemd.resource-control(5), https://man7.org/linux/man-pages/man5/systemd.resource-control.5.html).
The sandbox has no systemd, so its ``systemctl`` does the same (see ``sandbox_host.py``) in a
subtree made for the sandbox, which this module creates on the machine and removes again:

- on each cgroup v1 hierarchy the limits need (``memory``, ``cpu``, ``blkio``; measured here: this
  machine mounts them as v1 beside an empty cgroup2 at ``/sys/fs/cgroup/unified``), a directory
  ``redis-migration-sandbox-<owner pid>-<random>`` under the cgroup the owning process is in
  (``/proc/self/cgroup``), so the sandbox's services stay inside whatever limits the owner has;
- on a machine with only the unified hierarchy (cgroup v2), one such directory there. Controllers
  can be enabled below it only where the owner's cgroup allows it (cgroup v2's "no internal
  processes" rule); where it does not, the limits are written to a cgroup that does not enforce
  them and read back as not applied. Not exercised on this machine, which is v1.

The sandbox sees each directory as its own ``/sys/fs/cgroup/<controller>`` (bind mounts over a
read-only tmpfs), like a container sees its cgroup namespace, and nothing else of the machine's
tree. Directories left by an owner that died (SIGKILL) are removed by the next sandbox when empty.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "redis-migration-sandbox-"
# The v1 hierarchies systemd writes a unit's limits to (src/core/cgroup.c).
LEGACY_CONTROLLERS = ("memory", "cpu", "blkio")
REMOVE_DEADLINE_S = 10.0


def _mounts() -> dict[str, Path]:
    """{controller: mount point} of the machine's cgroup hierarchies; ``unified`` for cgroup2."""
    found: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, kind = left.split(), right.split()
        if len(fields) < 5 or not kind:
            continue
        mount_point = Path(fields[4])
        if kind[0] == "cgroup2":
            found.setdefault("unified", mount_point)
        elif kind[0] == "cgroup" and len(kind) >= 3:
            for option in kind[2].split(","):
                if option in LEGACY_CONTROLLERS:
                    found.setdefault(option, mount_point)
    return found


def _own_paths() -> dict[str, str]:
    """{controller: the cgroup this process is in}; ``unified`` for the ``0::`` line."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and controllers == "":
            paths["unified"] = path
        for controller in controllers.split(","):
            if controller in LEGACY_CONTROLLERS:
                paths[controller] = path
    return paths


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_tree(directory: Path, deadline: float) -> bool:
    """rmdir ``directory`` and the cgroups below it, deepest first; bounded by ``deadline``.

    Only empty cgroups can be removed: a cgroup still holding a process stays (EBUSY), so this can
    never take anything but what the sandbox made, and only once its processes are gone.
    """
    while True:
        try:
            children = [path for path in directory.rglob("*") if path.is_dir()]
        except OSError:
            children = []
        for child in sorted(children, key=lambda path: len(path.parts), reverse=True):
            with contextlib.suppress(OSError):
                child.rmdir()
        try:
            directory.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)  # the kernel still tears the killed processes down
        else:
            return True


@dataclass
class SandboxCgroups:
    """The sandbox's cgroup directories on the machine: {controller: path}."""

    directories: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def create(cls) -> SandboxCgroups:
        """Make the sandbox's subtree under this process's cgroups; empty when the machine offers
        none this process may write (then the sandbox runs without limits and says so)."""
        mounts, own = _mounts(), _own_paths()
        legacy = [name for name in LEGACY_CONTROLLERS if name in mounts and name in own]
        names = legacy or (["unified"] if "unified" in mounts and "unified" in own else [])
        tag = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        made = cls()
        for name in names:
            parent = mounts[name] / own[name].lstrip("/")
            _remove_abandoned(parent)
            directory = parent / tag
            try:
                directory.mkdir()
            except OSError:
                continue
            made.directories[name] = directory
        return made

    @property
    def mount_argument(self) -> str:
        """``name=path`` pairs for the sandbox's setup script (``unified`` alone on cgroup v2)."""
        return " ".join(f"{name}={path}" for name, path in self.directories.items())

    def path(self, controller: str, cgroup: str) -> Path | None:
        """The machine's directory of ``cgroup`` (as the sandbox names it) on ``controller``."""
        base = self.directories.get(controller) or self.directories.get("unified")
        return None if base is None else base / cgroup.lstrip("/")

    def remove(self) -> list[Path]:
        """Remove every directory made (once the sandbox's processes are gone); answer those left."""
        deadline = time.monotonic() + REMOVE_DEADLINE_S
        left = [path for path in self.directories.values() if not _remove_tree(path, deadline)]
        self.directories = {}
        return left


def _remove_abandoned(parent: Path) -> None:
    """Remove the empty subtrees of sandboxes whose owner is gone (killed before it could)."""
    try:
        entries = list(parent.glob(f"{PREFIX}*"))
    except OSError:
        return
    for entry in entries:
        owner = entry.name[len(PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            _remove_tree(entry, time.monotonic())


__all__ = ["LEGACY_CONTROLLERS", "SandboxCgroups"]
