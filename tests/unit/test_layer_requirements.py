"""The layer's dependencies: pinned, the same as the tests run, and a consistent set.

The layer comes before the Lambda runtime on ``sys.path``, so whatever it ships shadows the
runtime's copy. A layer that ships botocore (the X-Ray SDK depends on it) but not boto3 and
s3transfer makes the runtime's boto3 run on a botocore it was not released with. These checks
read the requirement files and the installed distributions' metadata (what ``sam build`` installs
for the same pins); they need no network.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

LAYER_REQUIREMENTS = REPO / "layers" / "shared" / "requirements.txt"
# The Lambda runtime the layer is built for (template.yaml: python3.13, arm64).
LAMBDA_MARKERS = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
AWS_SDK = ("boto3", "botocore", "s3transfer")


def layer_requirements() -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in LAYER_REQUIREMENTS.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def pinned_version(requirement: Requirement) -> str:
    pins = [spec.version for spec in requirement.specifier if spec.operator == "=="]
    assert len(pins) == 1, f"{requirement} is not pinned to one version"
    return pins[0]


def applies(marker: Marker | None, extras: Iterable[str]) -> bool:
    """Whether a dependency applies on the Lambda runtime with these extras requested."""
    if marker is None:
        return True
    return any(marker.evaluate({**LAMBDA_MARKERS, "extra": extra}) for extra in ("", *extras))


def resolved_closure(requirements: list[Requirement]) -> dict[str, tuple[str, list[Requirement]]]:
    """Every distribution the layer installs: name -> (installed version, its applicable requirements).

    Walks the installed distributions' metadata from the layer's requirements, with their extras.
    """
    closure: dict[str, tuple[str, list[Requirement]]] = {}
    pending = [(requirement, set(requirement.extras)) for requirement in requirements]
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in closure:
            continue
        distribution = metadata.distribution(name)
        needs = [Requirement(text) for text in distribution.requires or []]
        applicable = [need for need in needs if applies(need.marker, extras)]
        closure[name] = (distribution.version, applicable)
        pending.extend((need, set(need.extras)) for need in applicable)
    return closure


def test_every_layer_dependency_is_pinned_to_the_version_the_tests_run() -> None:
    # Given the layer's requirements
    requirements = layer_requirements()

    # Then each is pinned, to exactly the version installed here
    for requirement in requirements:
        assert pinned_version(requirement) == metadata.version(requirement.name), requirement


def test_the_layer_and_the_project_pin_the_same_runtime_dependencies() -> None:
    # Given pyproject.toml's dependencies (what the tests install) and the layer's (what ships)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]

    # Then they are the same pins
    assert sorted(map(str, map(Requirement, project))) == sorted(map(str, layer_requirements()))


def test_the_layer_ships_botocore_only_with_the_boto3_and_s3transfer_made_for_it() -> None:
    # Given everything the layer's requirements install on the Lambda runtime
    requirements = layer_requirements()
    closure = resolved_closure(requirements)
    pinned = {canonicalize_name(requirement.name) for requirement in requirements}

    # Then if botocore ships (the X-Ray SDK pulls it in), boto3 and s3transfer are pinned with it
    if "botocore" in closure:
        missing = [name for name in AWS_SDK if name not in pinned]
        assert not missing, f"the layer ships botocore but does not pin {missing}: the runtime's would mix"


def test_every_dependency_in_the_layer_accepts_the_versions_shipped_with_it() -> None:
    # Given everything the layer installs, at its installed versions
    closure = resolved_closure(layer_requirements())

    # Then every requirement of every package is met by the version shipped beside it
    unmet = [
        f"{name} {version} needs {need}, ships {closure[canonicalize_name(need.name)][0]}"
        for name, (version, needs) in closure.items()
        for need in needs
        if not need.specifier.contains(closure[canonicalize_name(need.name)][0], prereleases=True)
    ]
    assert unmet == []
    assert {"boto3", "botocore", "s3transfer"} <= set(closure)
