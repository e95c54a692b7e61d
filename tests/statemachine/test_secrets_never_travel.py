"""The password never leaves Secrets Manager: checked against the actual password of a real run."""

from __future__ import annotations

import json

from redis_migration.host.install import password_sha256

from redis_migration_ops.rehearsal.migration import LocalSetup
from tests.conftest import TEMPLATE_PATH


def test_the_password_is_nowhere_but_in_secrets_manager(setup: LocalSetup) -> None:
    # Given a migration that succeeded (and a failed rollback, so error paths are covered too)
    run = setup.run(name="migrate")
    assert run.described["status"] == "SUCCEEDED"
    setup.engine.fail_at("RestoreFunction")
    rollback = setup.run({"rollbackOf": run.execution_arn}, name="rollback-fails")
    assert rollback.described["error"] == "RollbackFailed"
    secret_arn = run.output["secretArn"]
    password = json.loads(
        setup.engine.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    )["password"]
    assert len(password) == 32

    # Then it appears in none of the places an operator, a log reader or the host can see
    lambda_ = setup.engine.client("lambda")
    pages = lambda_.get_paginator("list_functions").paginate()
    every_function = [function for page in pages for function in page["Functions"]]
    places = {
        "execution history": json.dumps([run.history, rollback.history], default=str),
        "execution outputs": json.dumps([run.described, rollback.described], default=str),
        "function logs": (setup.workdir / "function-logs.jsonl").read_text(),
        "SSM command parameters": json.dumps([c.parameters for c in setup.engine.ssm_commands]),
        "Lambda environments": json.dumps([f.get("Environment", {}) for f in every_function]),
        "template": TEMPLATE_PATH.read_text(),
        "Redis config on the host": setup.sandbox.host_path("/etc/redis/redis.conf").read_text(),
        "Redis log on the host": setup.sandbox.host_path("/var/log/redis/redis.log").read_text(),
    }
    for place, text in places.items():
        assert password not in text, f"the password is in the {place}"
    # The logs are not empty by accident: they hold every step's output.
    assert '"step":"CutOverFunction"' in places["function logs"].replace(" ", "")
    # Only the hash travels to the host, and Redis keeps it as an ACL hash, not a requirepass.
    assert password_sha256(password) in places["SSM command parameters"]
    assert f"#{password_sha256(password)}" in places["Redis config on the host"]
    assert "requirepass" not in places["Redis config on the host"]
