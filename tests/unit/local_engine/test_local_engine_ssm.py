"""SandboxSsm: Run Command on a registered sandbox really runs, reports progress and output."""

import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.ssm.instance_information import Platform, os_release_platform


@dataclass(frozen=True)
class FakeResult:
    exit_code: int
    stdout: str
    stderr: str


class LocalShellSandbox:
    """A fake sandbox for these tests: ``sh`` in a temporary directory, released by a gate."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.gate = threading.Event()

    def run_command(self, commands: list[str], timeout_s: float) -> FakeResult:
        if not self.gate.wait(10):
            raise TimeoutError("the test never released the gate")
        done = subprocess.run(
            ["sh", "-c", "\n".join(commands)],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        return FakeResult(done.returncode, done.stdout, done.stderr)


def _instance(engine: LocalEngine) -> str:
    ec2 = engine.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    return str(ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"])


def _finished(engine: LocalEngine, command_id: str, instance_id: str) -> dict[str, Any]:
    ssm = engine.client("ssm")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        invocation: dict[str, Any] = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        if invocation["Status"] not in ("Pending", "InProgress"):
            return invocation
        time.sleep(0.02)
    raise AssertionError("command still running after 10 s")


@pytest.fixture
def sandbox(bare_engine: LocalEngine, tmp_path: Path) -> tuple[str, LocalShellSandbox]:
    instance_id = _instance(bare_engine)
    fake = LocalShellSandbox(tmp_path)
    bare_engine.register_sandbox(instance_id, fake)
    return instance_id, fake


def test_a_command_runs_on_the_sandbox_and_reports_progress(
    bare_engine: LocalEngine, sandbox: tuple[str, LocalShellSandbox], tmp_path: Path
) -> None:
    instance_id, fake = sandbox
    ssm = bare_engine.client("ssm")
    # When a shell script is sent
    command = ssm.send_command(
        InstanceIds=[instance_id],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["echo installed > marker", "cat marker"]},
    )["Command"]
    # Then it is in progress until the sandbox finishes
    running = ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=instance_id)
    assert running["Status"] == "InProgress"
    listed = ssm.list_command_invocations(CommandId=command["CommandId"])["CommandInvocations"]
    assert [row["Status"] for row in listed] == ["InProgress"]
    fake.gate.set()
    finished = _finished(bare_engine, command["CommandId"], instance_id)
    # And it really ran there
    assert finished["Status"] == "Success"
    assert finished["ResponseCode"] == 0
    assert finished["StandardOutputContent"] == "installed\n"
    assert (tmp_path / "marker").read_text() == "installed\n"
    detailed = ssm.list_command_invocations(CommandId=command["CommandId"], Details=True)[
        "CommandInvocations"
    ]
    assert detailed[0]["CommandPlugins"][0]["Output"] == "installed\n"
    assert ssm.list_commands(CommandId=command["CommandId"])["Commands"][0]["Status"] == "Success"


def test_a_failing_command_reports_its_code_and_the_beginning_of_its_output(
    bare_engine: LocalEngine, sandbox: tuple[str, LocalShellSandbox]
) -> None:
    instance_id, fake = sandbox
    fake.gate.set()
    # Given a command that writes 30,000 characters to stdout and 9,000 to stderr, then fails
    command = bare_engine.client("ssm").send_command(
        InstanceIds=[instance_id],
        DocumentName="AWS-RunShellScript",
        Parameters={
            "commands": [
                "printf 'a%.0s' $(seq 23999); printf 'b%.0s' $(seq 6001)",
                "printf 'e%.0s' $(seq 7999) >&2; printf 'f%.0s' $(seq 1001) >&2",
                "exit 3",
            ]
        },
    )["Command"]
    # When it has finished
    finished = _finished(bare_engine, command["CommandId"], instance_id)
    # Then GetCommandInvocation keeps the FIRST 24,000 characters of stdout and 8,000 of stderr
    assert finished["Status"] == "Failed"
    assert finished["ResponseCode"] == 3
    assert finished["StandardOutputContent"] == "a" * 23999 + "b"
    assert finished["StandardErrorContent"] == "e" * 7999 + "f"
    # And ListCommandInvocations with Details (what the console shows) keeps the first 2,500
    listed = bare_engine.client("ssm").list_command_invocations(CommandId=command["CommandId"], Details=True)
    assert listed["CommandInvocations"][0]["CommandPlugins"][0]["Output"] == "a" * 2500


def test_instance_information_and_recorded_parameters(
    bare_engine: LocalEngine, sandbox: tuple[str, LocalShellSandbox]
) -> None:
    instance_id, fake = sandbox
    fake.gate.set()
    other = _instance(bare_engine)
    ssm = bare_engine.client("ssm")
    # The sandbox is online; an instance without one is not managed
    listed = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id, other]}]
    )
    assert [(row["InstanceId"], row["PingStatus"]) for row in listed["InstanceInformationList"]] == [
        (instance_id, "Online")
    ]
    # Every SendCommand is recorded with its parameters; other instances keep moto's instant Success
    command = ssm.send_command(
        InstanceIds=[other], DocumentName="AWS-RunShellScript", Parameters={"commands": ["true"]}
    )["Command"]
    assert ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=other)["Status"] == "Success"
    assert [(sent.instance_ids, sent.parameters) for sent in bare_engine.ssm_commands] == [
        ([other], {"commands": ["true"]})
    ]


class FilesSandbox(LocalShellSandbox):
    """A fake sandbox whose root is a directory (as the sandbox host's is /proc/<pid>/root)."""

    def host_path(self, path_inside: str) -> Path:
        return self.workdir / path_inside.lstrip("/")


def test_instance_information_reports_the_os_the_agent_reads_or_the_recorded_one(
    bare_engine: LocalEngine, tmp_path: Path
) -> None:
    # Given a sandbox whose /etc/os-release says Ubuntu 22.04, and an instance with a recorded OS
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(
        'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n'
    )
    ec2 = bare_engine.client("ec2")
    image = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*"]}])
    started = ec2.run_instances(ImageId=image["Images"][0]["ImageId"], MinCount=3, MaxCount=3)["Instances"]
    sandboxed, recorded, unmanaged = (instance["InstanceId"] for instance in started)
    bare_engine.register_sandbox(sandboxed, FilesSandbox(tmp_path))
    bare_engine.record_instance_platform(recorded, Platform(name="Amazon Linux", version="2023"))
    # When SSM is asked about all three
    listed = bare_engine.client("ssm").describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [sandboxed, recorded, unmanaged]}]
    )["InstanceInformationList"]
    # Then the agent's NAME and VERSION_ID, or the recorded OS; the unmanaged instance is not listed
    answered = {
        row["InstanceId"]: (
            row["PingStatus"],
            row["PlatformType"],
            row["PlatformName"],
            row["PlatformVersion"],
        )
        for row in listed
    }
    assert answered == {
        sandboxed: ("Online", "Linux", "Ubuntu", "22.04"),
        recorded: ("Online", "Linux", "Amazon Linux", "2023"),
    }


def test_a_sandbox_without_files_reports_this_machines_os(
    bare_engine: LocalEngine, sandbox: tuple[str, LocalShellSandbox]
) -> None:
    # Given a sandbox that copies this machine (its files are this machine's)
    instance_id, _ = sandbox
    expected = os_release_platform(Path("/etc/os-release").read_text())
    # When SSM is asked, then it answers this machine's os-release
    row = bare_engine.client("ssm").describe_instance_information()["InstanceInformationList"][0]
    assert (row["InstanceId"], row["PlatformName"], row["PlatformVersion"]) == (
        instance_id,
        expected.name,
        expected.version,
    )
    assert row["PlatformName"]  # os-release always has a NAME
