"""SSM Run Command on a sandbox host: the command really runs there; output follows SSM's rules.

What SSM keeps of a command's output (and so what the product can read back):

- ``GetCommandInvocation``: the *first* 24,000 characters of stdout (``StandardOutputContent``)
  and the first 8,000 of stderr (``StandardErrorContent``); anything after is only in S3 or
  CloudWatch Logs, when configured.
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html
- ``ListCommandInvocations`` with ``Details`` (and the console): each plugin's ``Output``, at most
  2,500 characters.
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandPlugin.html
"""

from __future__ import annotations

import copy
import datetime
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from moto.core.responses import ActionResult
from moto.ssm import models as ssm_models
from moto.ssm import responses as ssm_responses

from redis_migration_ops.local_engine.moto_patch import MotoPatch

LOG = logging.getLogger(__name__)

STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
PLUGIN_OUTPUT_LIMIT = 2_500


class CommandResult(Protocol):
    """What a sandbox answers for one command run."""

    @property
    def exit_code(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


class Sandbox(Protocol):
    """A local stand-in for an EC2 instance that SSM Run Command reaches."""

    def run_command(self, commands: list[str], timeout_s: float) -> CommandResult: ...


@dataclass(frozen=True)
class SentCommand:
    """What one ``SendCommand`` carried (so tests can check no secret travels)."""

    command_id: str
    document_name: str
    instance_ids: list[str]
    parameters: dict[str, list[str]]
    comment: str


class SsmSandboxes:
    """Registered sandboxes, sent commands and their running threads."""

    def __init__(self) -> None:
        self.sandboxes: dict[str, Sandbox] = {}
        self.sent: list[SentCommand] = []
        self.threads: list[threading.Thread] = []
        self.registered_at: dict[str, datetime.datetime] = {}
        self.lock = threading.RLock()
        # Counts finished commands; waiters of ssm_waiter_wakeup wake on a change.
        self._finished = 0
        self._finished_changed = threading.Condition(self.lock)

    def command_finished(self) -> None:
        """A sandbox command has its final status: wake whoever waits for one."""
        with self._finished_changed:
            self._finished += 1
            self._finished_changed.notify_all()

    def wait_for_a_finished_command(self, timeout_s: float) -> None:
        """Sleep up to ``timeout_s``, less if a sandbox command finishes meanwhile."""
        with self._finished_changed:
            seen = self._finished
            self._finished_changed.wait_for(lambda: self._finished != seen, timeout_s)

    def register(self, instance_id: str, sandbox: Sandbox) -> None:
        """Route commands for ``instance_id`` to ``sandbox``."""
        with self.lock:
            self.sandboxes[instance_id] = sandbox
            self.registered_at[instance_id] = datetime.datetime.now(datetime.UTC)

    def wait_idle(self, timeout_s: float) -> None:
        """Block up to ``timeout_s`` while a sandbox command is still running (see InstantWaits)."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            running = [thread for thread in self.threads if thread.is_alive()]
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))

    def join(self, deadline: float) -> list[str]:
        """Wait for running commands until ``deadline`` (monotonic); answer the threads still alive."""
        with self.lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread.name for thread in threads if thread.is_alive()]


def _first(text: str, limit: int) -> str:
    """SSM keeps the *beginning* of an output: a result line printed last can be lost."""
    return text[:limit]


def _iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


class SandboxSsm(MotoPatch):
    """Gap: moto's ``SendCommand`` reports ``Success`` at once and runs nothing;
    ``ListCommandInvocations`` is not implemented.

    Fill: for an instance registered as a sandbox, ``AWS-RunShellScript`` runs
    ``parameters["commands"]`` on the sandbox in a background thread; the invocation is
    ``InProgress`` until it ends, then ``Success``/``Failed``/``TimedOut`` with the exit code and
    the output cut as SSM does (see the module's docstring). (``DescribeInstanceInformation``, the
    managed nodes and their OS: ``instance_information.py``.) Every ``SendCommand`` is recorded.
    Other instances keep moto's behaviour. Also fixed: moto sends a command without ``Targets`` to
    every instance it knows (``Command._get_instance_ids_from_targets`` filters EC2 with no filter),
    so a command for one instance would run on every sandbox.
    """

    def __init__(self, state: SsmSandboxes) -> None:
        super().__init__()
        self._state = state

    def install(self) -> None:
        state = self._state
        backend_cls = ssm_models.SimpleSystemManagerBackend
        original_send = backend_cls.send_command
        original_get = backend_cls.get_command_invocation

        def send_command(backend: Any, **kwargs: Any) -> Any:
            command = original_send(backend, **kwargs)
            with state.lock:
                state.sent.append(
                    SentCommand(
                        command_id=command.command_id,
                        document_name=str(command.document_name),
                        instance_ids=list(command.instance_ids),
                        parameters=copy.deepcopy(command.parameters),
                        comment=str(command.comment or ""),
                    )
                )
                targets = [iid for iid in command.instance_ids if iid in state.sandboxes]
                if targets:
                    command.status = "InProgress"
                    command.status_details = "InProgress"
                    command.completed_count = len(command.instance_ids) - len(targets)
                for instance_id in targets:
                    invocation = _find_invocation(command, instance_id)
                    invocation.update(
                        Status="InProgress",
                        StatusDetails="InProgress",
                        ResponseCode=-1,
                        ExecutionEndDateTime="",
                        ExecutionElapsedTime="",
                    )
                    worker = threading.Thread(
                        target=_run_on_sandbox,
                        args=(state, command, instance_id),
                        name=f"ssm-{command.command_id}-{instance_id}",
                        daemon=True,
                    )
                    state.threads.append(worker)
                    worker.start()
            return command

        def get_command_invocation(backend: Any, command_id: str, instance_id: str, plugin_name: Any) -> Any:
            with state.lock:
                return copy.deepcopy(original_get(backend, command_id, instance_id, plugin_name))

        def list_command_invocations(response: Any) -> Any:
            command_id = response._get_param("CommandId")
            instance_id = response._get_param("InstanceId")
            details = bool(response._get_param("Details", False))
            backend = response.ssm_backend
            with state.lock:
                commands = backend.list_commands(command_id, None)
                rows = [
                    _invocation_summary(command, invocation, details)
                    for command in commands
                    for invocation in command.invocations
                    if instance_id is None or invocation["InstanceId"] == instance_id
                ]
            return ActionResult({"CommandInvocations": rows})

        original_targets = ssm_models.Command._get_instance_ids_from_targets

        def instance_ids_from_targets(command: Any) -> list[str]:
            # moto filters EC2 with {} when Targets is empty, which selects *every* instance.
            return list(original_targets(command)) if command.targets else []

        self._replace(ssm_models.Command, "_get_instance_ids_from_targets", instance_ids_from_targets)
        self._replace(backend_cls, "send_command", send_command)
        self._replace(backend_cls, "get_command_invocation", get_command_invocation)
        response_cls = ssm_responses.SimpleSystemManagerResponse
        self._add(response_cls, "list_command_invocations", list_command_invocations)


def _find_invocation(command: Any, instance_id: str) -> dict[str, Any]:
    for invocation in command.invocations:
        if invocation["InstanceId"] == instance_id:
            found: dict[str, Any] = invocation
            return found
    raise KeyError(instance_id)


def _run_on_sandbox(state: SsmSandboxes, command: Any, instance_id: str) -> None:
    with state.lock:
        sandbox = state.sandboxes[instance_id]
    parameters: dict[str, list[str]] = command.parameters or {}
    started = time.monotonic()
    timeout_s = float((parameters.get("executionTimeout") or ["3600"])[0])
    if command.document_name != "AWS-RunShellScript":
        status, code = "Failed", -1
        stdout, stderr = "", f"the local engine runs only AWS-RunShellScript, not {command.document_name}"
    else:
        try:
            result = sandbox.run_command(list(parameters.get("commands") or []), timeout_s)
            code, stdout, stderr = int(result.exit_code), str(result.stdout), str(result.stderr)
            status = "Success" if code == 0 else "Failed"
            if getattr(result, "timed_out", False):
                status = "TimedOut"
        except TimeoutError as error:
            status, code, stdout, stderr = "TimedOut", -1, "", f"execution timed out: {error}"
        except Exception as error:  # the sandbox broke: report it as the command's failure
            LOG.warning("sandbox %s failed to run a command", instance_id, exc_info=True)
            status, code, stdout, stderr = "Failed", -1, "", f"{type(error).__name__}: {error}"
    elapsed = time.monotonic() - started
    with state.lock:
        invocation = _find_invocation(command, instance_id)
        invocation.update(
            Status=status,
            StatusDetails="ExecutionTimedOut" if status == "TimedOut" else status,
            ResponseCode=code,
            StandardOutputContent=_first(stdout, STDOUT_LIMIT),
            StandardErrorContent=_first(stderr, STDERR_LIMIT),
            ExecutionElapsedTime=_iso_duration(elapsed),
            ExecutionEndDateTime=datetime.datetime.now(datetime.UTC).isoformat(),
        )
        if status != "Success":
            command.error_count += 1
        command.completed_count += 1
        done = [inv for inv in command.invocations if inv["Status"] != "InProgress"]
        if len(done) == len(command.invocations):
            statuses = {inv["Status"] for inv in command.invocations}
            command.status = (
                "Success"
                if statuses == {"Success"}
                else ("TimedOut" if statuses == {"TimedOut"} else "Failed")
            )
            command.status_details = command.status
    state.command_finished()


def _invocation_summary(command: Any, invocation: dict[str, Any], details: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "CommandId": command.command_id,
        "InstanceId": invocation["InstanceId"],
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": "$DEFAULT",
        "RequestedDateTime": command.requested_date_time,
        "Status": invocation["Status"],
        "StatusDetails": invocation["StatusDetails"],
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
    }
    if details:
        output = invocation.get("StandardOutputContent", "")
        error = invocation.get("StandardErrorContent", "")
        combined = output + (f"\n----------ERROR-------\n{error}" if error else "")
        row["CommandPlugins"] = [
            {
                "Name": invocation.get("PluginName", "aws:runShellScript"),
                "Status": invocation["Status"],
                "StatusDetails": invocation["StatusDetails"],
                "ResponseCode": invocation["ResponseCode"],
                "Output": _first(combined, PLUGIN_OUTPUT_LIMIT),
                "StandardOutputUrl": "",
                "StandardErrorUrl": "",
            }
        ]
    return row
