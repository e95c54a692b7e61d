"""The adapter's side of the contract with the script: parameters and the result line.

Pure Python (no sandbox); kept next to the host tests because it pins the script's interface.
"""

from __future__ import annotations

import hashlib

import pydantic
import pytest
from redis_migration.host.install import InstallParameters, parse_install_result, password_sha256

pytestmark = pytest.mark.host

RESULT = (
    'REDIS_INSTALL_RESULT {"ok":true,"changed":false,"server":"redis-server","version":"7.0.15",'
    '"configSha256":"ab","service":"active","error":null,"message":"nothing changed"}'
)


def test_password_sha256_is_the_hex_redis_accepts() -> None:
    assert password_sha256("pässword") == hashlib.sha256("pässword".encode()).hexdigest()


def test_result_is_found_after_ssm_cut_the_start_of_the_output() -> None:
    output = "...st of a line cut by SSM\nservice: redis-server unchanged\n" + RESULT + "\n"

    parsed = parse_install_result(output)

    assert parsed is not None
    assert (parsed.ok, parsed.changed, parsed.version, parsed.config_sha256) == (True, False, "7.0.15", "ab")


def test_a_cut_result_line_falls_back_to_an_earlier_complete_one_or_none() -> None:
    assert parse_install_result(RESULT[:60]) is None
    failed = RESULT.replace('"ok":true', '"ok":false')
    parsed = parse_install_result(failed + "\n" + RESULT[:60])
    assert parsed is not None
    assert parsed.ok is False


def test_parameters_refuse_a_password_in_place_of_its_hash_without_echoing_it() -> None:
    password = "ThisIsThePasswordNotItsHash12345"
    with pytest.raises(pydantic.ValidationError) as error:
        InstallParameters(bind_addresses=["127.0.0.1"], password_sha256=password)
    assert "password_sha256" in str(error.value)
    assert password not in str(error.value)


def test_parameters_require_loopback_in_bind() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"127\.0\.0\.1"):
        InstallParameters(bind_addresses=["10.0.1.23"], password_sha256="a" * 64)
