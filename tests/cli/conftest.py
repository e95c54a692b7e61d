"""The CLI pointed at the local engine: the real template, ASL and handlers on moto, a sandboxed Redis.

Each test module gets one engine, one local account and one sandbox host (a migration takes a few
seconds; setting up takes about as long). The CLI runs in-process through Typer's CliRunner, so
its boto3 calls land in the engine's moto, exactly as they would land in AWS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from redis_migration_ops.cli import app
from redis_migration_ops.local_engine.elasticache.endpoint import start_elasticache_endpoint
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.local_account import LocalAccount
from redis_migration_ops.rehearsal.migration import (
    REPO_ROOT,
    build_local_account,
    environments,
    redis_ingress_sources,
    stack_parameters,
)

POLL_S = "0.05"


@dataclass
class LocalStack:
    """A deployed local stack, the account it migrates, and the CLI aimed at it."""

    engine: LocalEngine
    account: LocalAccount
    state_machine_arn: str
    secret_name: str
    scratch: Path

    def cli(self, *args: str, input_text: str | None = None) -> Result:
        """Run ``redis-migration ARGS`` in-process (its AWS calls go to the engine)."""
        return CliRunner().invoke(app, list(args), input=input_text)

    def with_machine(self, *args: str) -> list[str]:
        return [*args, "--state-machine-arn", self.state_machine_arn]

    def everything(self) -> list[str]:
        return self.account.client_functions + self.account.other_functions

    def snapshot(self) -> dict[str, Any]:
        """Every function's environment and the Redis group's ingress: what a run may change."""
        return {
            "functions": environments(self.engine, self.everything()),
            "ingress": redis_ingress_sources(self.engine, self.account.redis_group_id),
        }

    def secret_names(self) -> list[str]:
        listed = self.engine.client("secretsmanager").list_secrets()["SecretList"]
        return sorted(secret["Name"] for secret in listed)

    def password(self) -> str:
        """The real Redis password, to prove no output carries it."""
        value = self.engine.client("secretsmanager").get_secret_value(SecretId=self.secret_name)
        return str(json.loads(value["SecretString"])["password"])

    def wait_for_state(self, execution_arn: str, state: str, timeout_s: float = 60.0) -> None:
        """Poll the history until ``state`` is entered (bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.engine.history(execution_arn):
                if event.get("stateEnteredEventDetails", {}).get("name") == state:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{state} was not entered within {timeout_s} s")

    def input_file(self, name: str, **document: Any) -> Path:
        """An execution input file (like events/cli-start.json) for ``--input``."""
        path = self.scratch / f"{name}.json"
        path.write_text(json.dumps(document))
        return path


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A rehearsal account with the stack deployed and the instance as a running sandbox host."""
    missing = SandboxHost.missing_requirements()
    if missing:
        pytest.skip("the sandbox host needs: " + ", ".join(missing))
    workdir = tmp_path_factory.mktemp("cli-host")
    with LocalEngine(REPO_ROOT) as engine:
        account = build_local_account(engine, client_count=3)
        stack = engine.deploy(stack_parameters(account))
        sandbox = SandboxHost(workdir / "host", account.private_ip)
        sandbox.start()
        try:
            engine.register_sandbox(account.instance_id, sandbox)
            engine.map_address(account.private_ip, 6379, sandbox.loopback_address(6379))
            parameters = stack.parameters
            # ElastiCache as the workflow reads it (CheckData, the client listings): the stand-in.
            with start_elasticache_endpoint(engine, account, workdir / "elasticache"):
                yield LocalStack(
                    engine=engine,
                    account=account,
                    state_machine_arn=stack.state_machine_arn(),
                    secret_name=f"{parameters['ProjectName']}-redis-password-{parameters['Environment']}",
                    scratch=workdir,
                )
        finally:
            sandbox.stop()
