"""SandboxSsm: Run Command on a registered sandbox really runs, reports progress and output."""

import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from redis_migration_ops.local_engine import LocalEngine


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
