"""The layout's walls, checked on every lint (scripts/lint.sh): the folders say the architecture.

- The domain's root holds only the ground every wing stands on; everything else lives in a wing
  (``data/``, ``host/``, ``clients/``, ``watch/``, ``decommission/``) or in ``steps/``. The local
  engine's root holds only the engine itself; the rest is grouped by AWS service, as moto is.
  The operator package's root holds the CLI and what it drives; the rest is in ``rehearsal/``,
  ``account/``, ``audit/`` or ``local_engine/``. A new module at a root fails here, so a prefix
  (``data_*``) cannot grow back.
- ``models.py`` imports nothing of ours but ``errors``.
- No wing imports a step: ``steps/`` is the only place that composes wings.
- No module imports a name starting with ``_`` from another of our modules.

Usage: ``python scripts/check_layout.py`` (exit 1 naming each breach).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = ROOT / "layers" / "shared" / "redis_migration"
OPS = ROOT / "redis_migration_ops"
ENGINE = OPS / "local_engine"

ROOT_MODULES = {
    DOMAIN: {
        "__init__",
        "models",
        "errors",
        "aws",
        "records",
        "executions",
        "lambda_support",
        "preflight_network",
    },
    ENGINE: {"__init__", "engine", "template", "sandbox_host", "moto_patch", "errors"},
    OPS: {
        "__init__",
        "__main__",
        "cli",
        "operations",
        "audit",
        "release_trigger",
        "decommission",
        "asl_checks",
    },
}
WINGS = ("data", "host", "clients", "watch", "decommission")
OURS = ("redis_migration", "redis_migration_ops", "functions", "tests", "benchmarks")


def imports_of(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in ``path``; ``names`` is empty for ``import x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def breaches() -> Iterator[str]:
    for folder, allowed in ROOT_MODULES.items():
        for path in sorted(folder.glob("*.py")):
            if path.stem not in allowed:
                yield f"{path.relative_to(ROOT)}: a new module at this root; put it in the wing it belongs to"

    for line, module, _names in imports_of(DOMAIN / "models.py"):
        if module.startswith("redis_migration.") and module != "redis_migration.errors":
            yield f"layers/shared/redis_migration/models.py:{line}: models imports {module} (only errors)"

    for wing in WINGS:
        for path in sorted((DOMAIN / wing).rglob("*.py")):
            for line, module, _names in imports_of(path):
                if module == "redis_migration.steps" or module.startswith("redis_migration.steps."):
                    yield f"{path.relative_to(ROOT)}:{line}: the {wing} wing imports a step ({module})"

    sources = [
        p
        for top in ("layers", "redis_migration_ops", "functions", "tests", "benchmarks", "scripts")
        for p in (ROOT / top).rglob("*.py")
        if ".aws-sam" not in p.parts
    ]
    for path in sorted(sources):
        for line, module, names in imports_of(path):
            if not module.startswith(OURS):
                continue
            private = [name for name in names if name.startswith("_") and not name.startswith("__")]
            if private:
                yield f"{path.relative_to(ROOT)}:{line}: imports private {', '.join(private)} from {module}"


def main() -> int:
    found = list(breaches())
    for breach in found:
        print(f"layout: {breach}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
