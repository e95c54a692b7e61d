"""SSM's managed-node inventory: ``DescribeInstanceInformation`` with the OS each agent reports.

What AWS answers (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html,
https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html): one
entry per managed node, filtered by ``InstanceIds`` (``Filters`` or the older
``InstanceInformationFilterList``), with its ``PingStatus`` (``Online``, ``ConnectionLost``,
``Inactive``) and its OS: ``PlatformType`` (``Linux``, ``Windows``, ``MacOS``), ``PlatformName`` and
``PlatformVersion``. On Linux the agent reads those two from ``/etc/os-release``, ``NAME`` and
``VERSION_ID`` (https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/platform/platform_unix.go:
``getPlatformDetails``), so Debian 12 is ``Debian GNU/Linux`` ``12`` and Ubuntu 22.04 ``Ubuntu``
``22.04``. An EC2 instance without a registered agent is not listed.
"""

from __future__ import annotations

import datetime
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ssm import responses as ssm_responses

from redis_migration_ops.local_engine.moto_patch import MotoPatch
from redis_migration_ops.local_engine.ssm.run_command import SsmSandboxes

LOG = logging.getLogger(__name__)

OS_RELEASE = "/etc/os-release"


@dataclass(frozen=True)
class Platform:
    """The OS a node's agent reports."""

    name: str
    version: str
    type: str = "Linux"
    ping_status: str = "Online"


@runtime_checkable
class SandboxFiles(Protocol):
    """A sandbox whose files can be read from outside (the sandbox host: its copy of this machine)."""

    def host_path(self, path_inside: str) -> Path: ...


def os_release_platform(text: str) -> Platform:
    """``NAME`` and ``VERSION_ID`` of an os-release file, as the SSM agent reads them."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, separator, value = line.strip().partition("=")
        if separator and not key.startswith("#"):
            fields[key] = value.strip().strip("\"'")
    return Platform(name=fields.get("NAME", "Linux"), version=fields.get("VERSION_ID", ""))


class ManagedInstances:
    """The platform each managed instance reports, when it is not the sandbox's own OS.

    An account file's recorded OS (``instance.platform``) is recorded here, so that the preflight
    decides as it would on AWS, whatever OS the sandbox host really runs. An instance recorded here
    is managed by SSM even without a sandbox (its commands keep moto's instant answer).
    """

    def __init__(self) -> None:
        self._platforms: dict[str, Platform] = {}
        self._since: dict[str, datetime.datetime] = {}
        self._lock = threading.Lock()

    def record(self, instance_id: str, platform: Platform) -> None:
        """``instance_id``'s agent reports ``platform`` from now on."""
        with self._lock:
            self._platforms[instance_id] = platform
            self._since.setdefault(instance_id, datetime.datetime.now(datetime.UTC))

    def recorded(self) -> dict[str, tuple[Platform, datetime.datetime]]:
        with self._lock:
            return {iid: (platform, self._since[iid]) for iid, platform in self._platforms.items()}


class SsmInstanceInformation(MotoPatch):
    """Gap: moto 5.2.5 does not implement ``DescribeInstanceInformation``.

    Fill: every registered sandbox and every instance with a recorded platform is a managed node.
    Its OS is the recorded one, else the sandbox's own ``/etc/os-release`` (read through the sandbox
    host's root; for a sandbox without files, this machine's, which the sandbox host copies).
    ``InstanceIds`` filters; other instances are not listed, as on AWS.
    """

    def __init__(self, sandboxes: SsmSandboxes, managed: ManagedInstances) -> None:
        super().__init__()
        self._sandboxes = sandboxes
        self._managed = managed

    def install(self) -> None:
        sandboxes, managed = self._sandboxes, self._managed

        def describe_instance_information(response: Any) -> Any:
            wanted: set[str] | None = None
            for item in response._get_param("Filters") or []:
                if item.get("Key") == "InstanceIds":
                    wanted = set(item.get("Values") or [])
            for item in response._get_param("InstanceInformationFilterList") or []:
                if item.get("key") == "InstanceIds":
                    wanted = set(item.get("valueSet") or [])
            with sandboxes.lock:
                running = dict(sandboxes.sandboxes)
                registered = dict(sandboxes.registered_at)
            nodes: dict[str, tuple[Platform, datetime.datetime]] = {
                iid: (_sandbox_platform(sandbox), registered[iid]) for iid, sandbox in running.items()
            }
            nodes.update(managed.recorded())
            backend = response.ssm_backend
            rows = [
                _row(backend, iid, *nodes[iid]) for iid in sorted(nodes) if wanted is None or iid in wanted
            ]
            return ActionResult({"InstanceInformationList": rows})

        self._add(
            ssm_responses.SimpleSystemManagerResponse,
            "describe_instance_information",
            describe_instance_information,
        )


def _sandbox_platform(sandbox: object) -> Platform:
    path = sandbox.host_path(OS_RELEASE) if isinstance(sandbox, SandboxFiles) else Path(OS_RELEASE)
    try:
        return os_release_platform(path.read_text(encoding="utf-8"))
    except OSError:
        return Platform(name="Linux", version="")  # the agent's "not available" has no better answer


def _row(backend: Any, instance_id: str, platform: Platform, since: datetime.datetime) -> dict[str, Any]:
    address = ""
    try:
        instance = ec2_backends[backend.account_id][backend.region_name].get_instance(instance_id)
        address = str(instance.private_ip or "")
    except Exception:  # a sandbox need not be an EC2 instance moto knows
        LOG.debug("managed node %s is not an EC2 instance in moto", instance_id)
    return {
        "InstanceId": instance_id,
        "PingStatus": platform.ping_status,
        "LastPingDateTime": datetime.datetime.now(datetime.UTC),
        "AgentVersion": "3.3.0.0",
        "IsLatestVersion": True,
        "PlatformType": platform.type,
        "PlatformName": platform.name,
        "PlatformVersion": platform.version,
        "ResourceType": "EC2Instance",
        "IPAddress": address,
        "ComputerName": instance_id,
        "RegistrationDate": since,
    }
