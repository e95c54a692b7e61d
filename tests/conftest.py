"""Shared fixtures: the repository's paths and a fake AWS environment (no credentials leak in)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
ASL_PATH = REPO / "statemachine" / "migration.asl.json"
TEMPLATE_PATH = REPO / "template.yaml"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region: nothing here can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture
def asl_definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(ASL_PATH.read_text())
    return definition


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, by file name without extension."""
    event: dict[str, Any] = json.loads((REPO / "events" / f"{name}.json").read_text())
    return event


# -- how the tests are spread over xdist's workers ------------------------------------------------

_SHARED_SET_UP = 'scope="module"'


def _keeps_its_tests_together(module_path: Path) -> bool:
    """A module whose tests share a module-scoped set-up (its own, or its directory's conftest)
    runs on one worker: its tests may build on each other's state, and the set-up is paid once."""
    for source in (module_path, module_path.parent / "conftest.py"):
        if source.is_file() and _SHARED_SET_UP in source.read_text():
            return True
    return False


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Tests that share a set-up stay on one worker; every other test goes wherever there is room.

    ``--dist loadfile`` kept the ordered host scenarios together but also put all of the
    failure-at-every-step module (fifty runs of the workflow) on one worker, which then set the
    suite's length. This is xdist's own scope scheduling with the scope decided per module.
    """
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 - only when xdist runs

    root = Path(str(config.rootpath))
    together: dict[str, bool] = {}

    class SharedSetUpTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module not in together:
                together[module] = _keeps_its_tests_together(root / module)
            return module if together[module] else nodeid

    return SharedSetUpTogether(config, log)
