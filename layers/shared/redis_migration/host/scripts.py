"""The host scripts as SSM ``AWS-RunShellScript`` commands.

``AWS-RunShellScript`` runs its commands with ``/bin/sh`` (dash on Debian and Ubuntu), so each
script is fed to ``bash -s`` as a quoted here-document, with ``host/common.sh`` (the shell
helpers every script uses) in front, and ``host/redis_facts.sh`` (platform table, talking to the
local Redis, data digest, host facts) for the scripts that look at Redis, and ``host/machine_facts.sh``
(the instance and its co-tenant services) for those that watch the instance: the host needs
nothing of ours installed beforehand.
"""

from __future__ import annotations

import shlex
from importlib import resources
from pathlib import PurePosixPath

COMMON = "host/common.sh"
FACTS = "host/redis_facts.sh"
MACHINE = "host/machine_facts.sh"

# The shared parts each script is sent with, in order, in front of it.
INCLUDES: dict[str, tuple[str, ...]] = {
    "host/install_redis.sh": (COMMON, FACTS),
    "host/inspect_redis.sh": (COMMON, FACTS, MACHINE),
    "host/read_host_health.sh": (COMMON, MACHINE),
    "host/revert_redis_host.sh": (COMMON, FACTS),
    "host/host_services.sh": (COMMON,),
}


def host_script(resource: str) -> str:
    """The text bash runs for ``resource`` (e.g. ``host/install_redis.sh``): helpers, then script."""
    package = resources.files("redis_migration")
    parts = [package.joinpath(part).read_text(encoding="utf-8") for part in INCLUDES.get(resource, (COMMON,))]
    script = package.joinpath(resource).read_text(encoding="utf-8")
    return "\n".join([*parts, script])


def script_command(resource: str, arguments: list[str]) -> list[str]:
    """The ``commands`` parameter that runs ``resource`` on the host with ``arguments``."""
    text = host_script(resource)
    delimiter = PurePosixPath(resource).stem.upper() + "_SCRIPT"
    if any(line == delimiter for line in text.splitlines()):
        # The quoted here-doc would end early: a packaging mistake, caught before anything is sent.
        raise RuntimeError(f"packaging error: {resource} contains the line {delimiter}")
    body = text if text.endswith("\n") else text + "\n"
    return [f"bash -s -- {shlex.join(arguments)} <<'{delimiter}'\n{body}{delimiter}"]
