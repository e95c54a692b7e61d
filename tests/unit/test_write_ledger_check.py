"""The write ledger's check (rehearsal/ledger.py), against servers held in memory: the rule for "lost".

No Redis here: a reader answers from dictionaries, so every case of the rule is shown on its own.
The check on real servers is tests/statemachine/test_write_ledger.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis_migration_ops.rehearsal.ledger import (
    Ledger,
    LedgerEntry,
    check_ledger,
    names_redis,
    read_ledger,
    to_do_items,
)

CACHE = "master.campaign.abc123.use1.cache.amazonaws.com:6379"
SELF = "10.42.1.4:6379"


@dataclass
class Servers:
    """Two servers as dictionaries: (db, key) -> value."""

    data: dict[str, dict[tuple[int, str], str]] = field(
        default_factory=lambda: {"elasticache": {}, "self-hosted:6379": {}}
    )

    def server_of(self, address: str) -> str | None:
        return {CACHE: "elasticache", SELF: "self-hosted:6379"}.get(address)

    def servers(self) -> list[str]:
        return list(self.data)

    def names(self, server: str) -> list[str]:
        return (
            ["master.campaign.abc123.use1.cache.amazonaws.com", "campaign"]
            if server == "elasticache"
            else ["10.42.1.4", "i-0abc"]
        )

    def get(self, server: str, db: int, keys: Sequence[str]) -> list[str | None]:
        return [self.data[server].get((db, key)) for key in keys]


def write(client: str, key: str, value: str | int, redis: str = SELF, **extra: object) -> LedgerEntry:
    kind = "incrby" if isinstance(value, int) else "set"
    return LedgerEntry(client=client, db=0, key=key, value=value, redis=redis, at="t", kind=kind, **extra)  # type: ignore[arg-type]


def test_every_write_on_the_redis_its_client_ends_on_is_not_lost() -> None:
    # Given two writes by f1 (the second on the self-hosted Redis) and a counter of two clients
    servers = Servers()
    servers.data["self-hosted:6379"] = {(0, "k1"): "a", (0, "k2"): "b", (0, "c"): "5"}
    entries = [
        write("f1", "k1", "a", CACHE),
        write("f1", "k2", "b"),
        write("f1", "c", 2),
        write("f2", "c", 3),
    ]

    # When the check runs with both clients on the self-hosted Redis at the end
    verdict = check_ledger(entries, {"f1": SELF, "f2": SELF}, servers, [])

    # Then nothing is lost
    assert (verdict.acknowledged, verdict.lost, verdict.keys, verdict.counters) == (4, 0, 2, 1)


def test_a_missing_key_is_lost_and_named() -> None:
    servers = Servers()
    verdict = check_ledger([write("f1", "k1", "a", CACHE)], {"f1": SELF}, servers, [])
    assert verdict.lost == 1
    assert verdict.lost_keys[0].startswith("k1 (db 0, f1): 'a' acknowledged by " + CACHE)
    assert verdict.lost_keys[0].endswith(f"on {SELF} at the end: None")


def test_only_the_last_acknowledged_value_counts_and_an_update_reverted_is_lost() -> None:
    # Given k1 written twice; the server holds the first value again (an update reverted)
    servers = Servers()
    servers.data["self-hosted:6379"] = {(0, "k1"): "first"}
    entries = [write("f1", "k1", "first"), write("f1", "k1", "second")]
    assert check_ledger(entries, {"f1": SELF}, servers, []).lost == 1
    # And with the last value there, nothing is lost
    servers.data["self-hosted:6379"] = {(0, "k1"): "second"}
    assert check_ledger(entries, {"f1": SELF}, servers, []).lost == 0


def test_a_write_on_another_redis_counts_only_when_a_to_do_item_names_that_redis() -> None:
    # Given f1's write stayed on ElastiCache while f1 ends on the self-hosted Redis
    servers = Servers()
    servers.data["elasticache"] = {(0, "k1"): "a"}
    entries = [write("f1", "k1", "a", CACHE)]

    # Then it is lost unless what is left to do names ElastiCache (by an endpoint or the group's id)
    assert check_ledger(entries, {"f1": SELF}, servers, ["host i-0abc: config differs"]).lost == 1
    named = check_ledger(
        entries,
        {"f1": SELF},
        servers,
        ["keys written on master.campaign.abc123.use1.cache.amazonaws.com stay"],
    )
    assert (named.lost, named.named_in_to_do) == (0, 1)


def test_a_counter_must_add_up_on_the_redis_its_writers_end_on() -> None:
    servers = Servers()
    servers.data["self-hosted:6379"] = {(0, "c"): "4"}
    entries = [write("f1", "c", 2), write("f2", "c", 3)]
    verdict = check_ledger(entries, {"f1": SELF, "f2": SELF}, servers, [])
    assert verdict.lost == 1
    assert "5 acknowledged in 2 increment(s); '4' at the end" in verdict.lost_keys[0]


def test_a_counter_in_parts_counts_as_named_only_when_the_to_do_names_where_the_other_part_is() -> None:
    # Given a counter incremented on ElastiCache before the cutover (2) and on the self-hosted Redis
    # after it (3), by a run that carried no data
    servers = Servers()
    servers.data["elasticache"] = {(0, "c"): "2"}
    servers.data["self-hosted:6379"] = {(0, "c"): "3"}
    entries = [write("f1", "c", 2, CACHE), write("f1", "c", 3)]

    # Then it is lost unless what is left to do names ElastiCache, and the parts add up
    assert check_ledger(entries, {"f1": SELF}, servers, []).lost == 1
    told = ["campaign: 1 key(s) written before the cutover stay on ElastiCache (not carried)"]
    named = check_ledger(entries, {"f1": SELF}, servers, told)
    assert (named.lost, named.named_in_to_do) == (0, 1)
    servers.data["elasticache"] = {(0, "c"): "1"}
    assert check_ledger(entries, {"f1": SELF}, servers, told).lost == 1


def test_a_counter_whose_writers_end_on_different_redis_servers_is_split() -> None:
    servers = Servers()
    servers.data["self-hosted:6379"] = {(0, "c"): "5"}
    entries = [write("f1", "c", 2), write("f2", "c", 3)]
    verdict = check_ledger(entries, {"f1": SELF, "f2": CACHE}, servers, [])
    assert verdict.lost == 1
    assert "different Redis servers" in verdict.lost_keys[0]


def test_a_write_that_got_no_answer_may_have_happened_but_is_not_required() -> None:
    # Given an acknowledged write, then one that timed out (unknown outcome)
    entries = [write("f1", "k1", "a"), write("f1", "k1", "b", acknowledged=False), write("f1", "c", 2)]
    entries += [write("f1", "c", 4, acknowledged=False)]
    servers = Servers()
    for value, total in (("a", "2"), ("b", "6")):
        # When the server holds either outcome
        servers.data["self-hosted:6379"] = {(0, "k1"): value, (0, "c"): total}
        # Then nothing is lost, and only the acknowledged writes are counted
        verdict = check_ledger(entries, {"f1": SELF}, servers, [])
        assert (verdict.acknowledged, verdict.lost) == (2, 0)
    # But a value no write made is lost
    servers.data["self-hosted:6379"] = {(0, "k1"): "z", (0, "c"): "7"}
    assert check_ledger(entries, {"f1": SELF}, servers, []).lost == 2


def test_a_client_that_ends_on_no_reachable_redis_loses_its_writes() -> None:
    servers = Servers()
    servers.data["self-hosted:6379"] = {(0, "k1"): "a"}
    assert check_ledger([write("f1", "k1", "a")], {"f1": None}, servers, []).lost == 1


def test_a_to_do_item_names_a_redis_only_by_a_whole_address() -> None:
    assert names_redis("revoke the rule for 10.42.1.4:6379", ["10.42.1.4"])
    assert names_redis("keys stay on 10.42.1.4.", ["10.42.1.4"])
    assert not names_redis("keys stay on 10.42.1.45", ["10.42.1.4"])
    assert not names_redis("replication group campaign-redis-2", ["campaign-redis"])
    assert names_redis(
        "MASTER.Campaign.ABC123.use1.cache.amazonaws.com holds them",
        ["master.campaign.abc123.use1.cache.amazonaws.com"],
    )


def test_what_is_left_to_do_comes_from_a_rollback_failed_cause_and_from_an_output() -> None:
    runs: list[dict[str, Any]] = [
        {"cause": json.dumps({"leftToDoByHand": ["one", "two"]}), "output": None},
        {"cause": "not json", "output": json.dumps({"outcome": "migrated", "leftToDo": ["three"]})},
        {"status": "SUCCEEDED"},
    ]
    assert to_do_items(runs) == ["one", "two", "three"]


def test_the_ledger_file_has_one_json_line_per_write(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.record(write("f1", "k1", "a"))
    ledger.record(write("f1", "c", 3))
    lines = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert lines[0] == {
        "client": "f1",
        "db": 0,
        "key": "k1",
        "value": "a",
        "redis": SELF,
        "at": "t",
        "kind": "set",
        "acknowledged": True,
    }
    assert lines[1]["kind"] == "incrby"
    assert lines[1]["value"] == 3
    assert read_ledger(tmp_path / "ledger.jsonl") == ledger.entries()
