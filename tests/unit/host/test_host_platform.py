"""The host's OS at preflight: what SSM reports decides, before anything changes, whether Redis 7 can come."""

from __future__ import annotations

import pytest
from redis_migration.host.platform import InstancePlatform, platform_problems

INSTANCE = "i-0123456789abcdef0"


def _platform(name: str, version: str, kind: str = "Linux", ping: str = "Online") -> InstancePlatform:
    return InstancePlatform(
        instance_id=INSTANCE,
        ping_status=ping,
        platform_type=kind,
        platform_name=name,
        platform_version=version,
    )


@pytest.mark.parametrize(
    ("name", "version", "refusal"),
    [
        ("Ubuntu", "22.04", "runs Ubuntu 22.04: its packages offer redis-server 6.0, not 7"),
        ("Ubuntu", "20.04", "runs Ubuntu 20.04: its packages offer redis-server 5.0, not 7"),
        ("Debian GNU/Linux", "11", "runs Debian GNU/Linux 11: its packages offer redis-server 6.0 or older"),
        ("Amazon Linux", "2", "runs Amazon Linux 2: the install supports Amazon Linux 2023 only"),
        ("Red Hat Enterprise Linux", "8.9", "its repositories stop at Redis 6"),
        ("SLES", "15.5", "runs SLES 15.5: the install supports Debian 12+, Ubuntu 24.04+"),
        ("Microsoft Windows Server 2022 Datacenter", "10.0.20348", "Redis 7 is installed on Linux only"),
    ],
)
def test_an_os_whose_packages_offer_no_redis_7_is_refused_with_the_way_on(
    name: str, version: str, refusal: str
) -> None:
    # Given the OS SSM's agent reports
    kind = "Windows" if name.startswith("Microsoft") else "Linux"
    # When the preflight judges it
    problems, _ = platform_problems(INSTANCE, _platform(name, version, kind))
    # Then one problem names the field, the OS, why, and what to do; nothing was changed
    assert len(problems) == 1
    assert problems[0].startswith(f"instanceId: {INSTANCE} ")
    assert refusal in problems[0]
    assert "nothing was changed. Upgrade the instance's OS, or migrate to an instance running" in problems[0]


@pytest.mark.parametrize(
    ("name", "version", "note"),
    [
        ("Debian GNU/Linux", "12", None),
        ("Ubuntu", "24.04", None),
        ("Ubuntu", "24.10", None),
        ("Amazon Linux", "2023", "Valkey 8, Redis 7.2-compatible"),
        ("Rocky Linux", "9.4", "the redis:7 module stream"),
        ("Red Hat Enterprise Linux", "9.2", "the redis:7 module stream"),
    ],
)
def test_an_os_that_offers_redis_7_passes(name: str, version: str, note: str | None) -> None:
    problems, warnings = platform_problems(INSTANCE, _platform(name, version))
    assert problems == []
    if note is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert note in warnings[0]


def test_an_instance_ssm_does_not_manage_or_cannot_reach_is_refused() -> None:
    problems, _ = platform_problems(INSTANCE, None)
    assert problems == [
        f"instanceId: {INSTANCE} is not managed by SSM (no agent registered); the install runs through "
        "SSM Run Command: install and start the SSM agent and give the instance an instance profile with "
        "AmazonSSMManagedInstanceCore"
    ]
    problems, _ = platform_problems(INSTANCE, _platform("Debian GNU/Linux", "12", ping="ConnectionLost"))
    assert problems == [
        f"instanceId: {INSTANCE}'s SSM agent is ConnectionLost, not Online; the install runs through SSM "
        "Run Command: start the agent (systemctl start amazon-ssm-agent)"
    ]
