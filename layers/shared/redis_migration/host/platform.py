"""The host's OS, as SSM reports it, judged before anything changes: do its packages offer Redis 7?

The install (``install_redis.sh``) takes Redis from the OS's own repositories and refuses a server
older than 7.0, but only when it runs: after the password secret and the security-group rule were
made. The preflight reads the platform the SSM agent reported (``DescribeInstanceInformation``:
``PlatformType``, ``PlatformName``, ``PlatformVersion``, ``PingStatus``) and refuses what cannot
work, naming the way on. The agent takes ``PlatformName`` and ``PlatformVersion`` from
``/etc/os-release`` (``NAME``, ``VERSION_ID``):
https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/platform/platform_unix.go
https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html

What each OS's packages offer (the same table as the install script's ``platform_table``):

- Debian 12 and Ubuntu 24.04 ship ``redis-server`` 7.0.15; Debian 11 and Ubuntu 22.04 ship 6.0,
  Ubuntu 20.04 ships 5.0 (https://packages.debian.org/bookworm/redis-server,
  https://packages.ubuntu.com/jammy/redis-server, https://packages.ubuntu.com/noble/redis-server).
- Amazon Linux 2023 ships ``redis6`` (6.2) and ``valkey`` 8, a Redis 7.2-compatible fork: the install
  takes Valkey. Amazon Linux 2 has no Redis 7 in its repositories (``amazon-linux-extras`` stops at
  redis6), and the install supports only 2023.
- The RHEL 9 family's default ``redis`` is 6.2; minor releases add a ``redis:7`` module stream. Whether
  the instance's repositories carry it is only known on the host: the install checks before any change,
  so the preflight lets RHEL 9 through with a note. RHEL 8 and older stop at Redis 6.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from redis_migration.aws import AwsClients

# What the install script serves (install_redis.sh, redis_facts.sh: platform_table).
SUPPORTED = "Debian 12+, Ubuntu 24.04+, Amazon Linux 2023 (Valkey 8) or the RHEL 9 family"
WAY_ON = (
    "nothing was changed. Upgrade the instance's OS, or migrate to an instance running "
    f"{SUPPORTED} (instanceId), then run again"
)
_RHEL_FAMILY = ("red hat enterprise linux", "rocky linux", "almalinux", "centos")


class InstancePlatform(BaseModel):
    """One managed instance as ``DescribeInstanceInformation`` lists it (None: SSM does not list it)."""

    model_config = ConfigDict(frozen=True)

    instance_id: str
    ping_status: str | None = None
    platform_type: str | None = None
    platform_name: str | None = None
    platform_version: str | None = None

    @property
    def label(self) -> str:
        """``Ubuntu 22.04``: how an operator names the OS."""
        return " ".join(part for part in (self.platform_name, self.platform_version) if part) or "unknown"


def read_platform(instance_id: str, aws: AwsClients) -> InstancePlatform | None:
    """The instance's entry in SSM's managed-node inventory; None when SSM does not manage it."""
    paginator = aws.ssm.get_paginator("describe_instance_information")
    pages = paginator.paginate(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])
    for page in pages:
        for info in page["InstanceInformationList"]:
            if info.get("InstanceId") == instance_id:
                return _platform(instance_id, dict(info))
    return None


def _platform(instance_id: str, info: dict[str, Any]) -> InstancePlatform:
    return InstancePlatform(
        instance_id=instance_id,
        ping_status=info.get("PingStatus"),
        platform_type=info.get("PlatformType"),
        platform_name=info.get("PlatformName"),
        platform_version=info.get("PlatformVersion"),
    )


def platform_problems(instance_id: str, platform: InstancePlatform | None) -> tuple[list[str], list[str]]:
    """(problems, warnings) for installing Redis 7 on ``platform``; pure."""
    if platform is None:
        return [
            f"instanceId: {instance_id} is not managed by SSM (no agent registered); the install runs "
            "through SSM Run Command: install and start the SSM agent and give the instance an instance "
            "profile with AmazonSSMManagedInstanceCore"
        ], []
    problems: list[str] = []
    if platform.ping_status != "Online":
        problems.append(
            f"instanceId: {instance_id}'s SSM agent is {platform.ping_status or 'unknown'}, not Online; "
            "the install runs through SSM Run Command: start the agent (systemctl start amazon-ssm-agent)"
        )
    problem, warning = redis7_offer(platform)
    if problem:
        problems.append(f"instanceId: {instance_id} runs {platform.label}: {problem}; {WAY_ON}")
    return problems, [f"instanceId: {instance_id} runs {platform.label}: {warning}"] if warning else []


def redis7_offer(platform: InstancePlatform) -> tuple[str | None, str | None]:
    """(why its packages offer no Redis 7, a note) for the OS; both None when they do."""
    kind = (platform.platform_type or "").lower()
    name = (platform.platform_name or "").lower()
    major, minor = _version(platform.platform_version)
    if kind and kind != "linux":
        return f"Redis 7 is installed on Linux only, not {platform.platform_type}", None
    if name == "ubuntu":
        if (major, minor) < (24, 4):
            offered = "5.0" if major < 22 else "6.0"
            return f"its packages offer redis-server {offered}, not 7 (Ubuntu 24.04 ships 7.0)", None
        return None, None
    if name.startswith("debian"):
        if major < 12:
            return "its packages offer redis-server 6.0 or older, not 7 (Debian 12 ships 7.0)", None
        return None, None
    if name.startswith("amazon linux"):
        if major == 2023:
            return None, "Redis comes from its valkey package (Valkey 8, Redis 7.2-compatible; redis6 is 6.2)"
        return (
            "the install supports Amazon Linux 2023 only (Amazon Linux 2 has no Redis 7: "
            "amazon-linux-extras stops at redis6 6.2)",
            None,
        )
    if name.startswith(_RHEL_FAMILY):
        if major < 9:
            return "its repositories stop at Redis 6 (module streams redis:5 and redis:6)", None
        return None, (
            "its default redis is 6.2; the install takes the redis:7 module stream when the repositories "
            "have it and otherwise refuses before any change"
        )
    return f"the install supports {SUPPORTED}", None


def _version(text: str | None) -> tuple[int, int]:
    """``22.04`` -> (22, 4); ``2023`` -> (2023, 0); unreadable -> (0, 0)."""
    major, minor, *_ = [*(int(part) for part in re.findall(r"\d+", text or "")[:2]), 0, 0]
    return major, minor
