"""Seed-commands files are split as redis-cli splits a line (sdssplitargs)."""

import pytest

from redis_migration_ops.local_engine.elasticache.endpoint import split_redis_cli_line


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"SET a 1", [b"SET", b"a", b"1"]),
        (b"  SET\ta   1  ", [b"SET", b"a", b"1"]),
        (b'SET "a b" "\\x00\\xff\\n\\r\\t\\"q\\\\"', [b"SET", b"a b", b'\x00\xff\n\r\t"q\\']),
        (b"SET 'it''s' x", None),  # a closing quote must be followed by a blank
        (b"HSET h f 'O\\'Brien'", [b"HSET", b"h", b"f", b"O'Brien"]),
        (b"SET 'a\\nb' x", [b"SET", b"a\\nb", b"x"]),  # no escapes in single quotes
        (b'SET k"ey" v', [b"SET", b"key", b"v"]),  # a quote may start inside a word
        (b'SET "\\xZZ" v', [b"SET", b"xZZ", b"v"]),  # not hex: the escaped byte stands for itself
        (b"SET \xc3\xa9t\xc3\xa9 v", [b"SET", b"\xc3\xa9t\xc3\xa9", b"v"]),
        (b"", []),
        (b'SET ""', [b"SET", b""]),
    ],
)
def test_lines_split_like_redis_cli(line: bytes, args: list[bytes] | None) -> None:
    if args is None:
        with pytest.raises(ValueError, match="followed by a blank"):
            split_redis_cli_line(line)
    else:
        assert split_redis_cli_line(line) == args


@pytest.mark.parametrize("line", [b'SET "a', b"SET 'a", b'SET "a\\"'])
def test_unbalanced_quotes_are_refused(line: bytes) -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        split_redis_cli_line(line)
