"""What deleting the replication group saves: its nodes' price, from a dated table, net of what stays.

The table (``elasticache_on_demand_prices.json``, beside this module) holds USD per node-hour for
node-based clusters by region and node type, with its date and source; the month is AWS's 730
hours. Two things keep costing after the deletion and are counted:

- reserved nodes: a reservation is paid for its whole term whether or not nodes run
  (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheNodes.Reserved.html), and since
  October 2024 it applies to every size of its node family, by normalized units (a ``large`` is 4
  units, an ``xlarge`` 8, ...:
  https://aws.amazon.com/blogs/database/new-size-flexibility-for-amazon-elasticache-reserved-nodes).
  The nodes an active reservation of the family may cover save nothing until it ends; another
  cluster of the family may be the one it covers, so this is the least the deletion saves;
- the final snapshot kept as the way back, billed as backup storage per GiB-month (the table's
  ``backupStorageUsdPerGibMonth``), its size estimated from the data the nodes held
  (``BytesUsedForCache``: an RDB file is usually smaller, so the estimate errs on the high side).

Data transfer is not counted. An unknown region or node type is said, never guessed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict

from redis_migration.decommission.models import Saving

PRICE_TABLE = "elasticache_on_demand_prices.json"


@cache
def price_table() -> dict[str, Any]:
    """The dated price table shipped with the package."""
    text = resources.files("redis_migration.decommission").joinpath(PRICE_TABLE).read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


GIB = 1024**3
# Normalized units of a node size (size flexibility); "8xlarge" and the like are 8 per xlarge.
_SIZE_UNITS = {"nano": 0.25, "micro": 0.5, "small": 1.0, "medium": 2.0, "large": 4.0, "xlarge": 8.0}


class Reservation(BaseModel):
    """An active reserved-node purchase, as DescribeReservedCacheNodes lists it."""

    model_config = ConfigDict(frozen=True)

    reservation_id: str
    node_type: str
    count: int
    ends: datetime
    offering_type: str = ""

    def line(self) -> str:
        return f"{self.reservation_id}: {self.count} x {self.node_type}, until {self.ends:%Y-%m-%d}"


def node_units(node_type: str) -> float | None:
    """``cache.r6g.2xlarge`` -> 16.0: the size's normalized units; None for an unknown size."""
    size = node_type.rsplit(".", 1)[-1]
    if size in _SIZE_UNITS:
        return _SIZE_UNITS[size]
    if size.endswith("xlarge") and size[: -len("xlarge")].isdigit():
        return 8.0 * int(size[: -len("xlarge")])
    return None


def node_family(node_type: str) -> str:
    """``cache.r6g.2xlarge`` -> ``cache.r6g``."""
    return node_type.rsplit(".", 1)[0]


def reserved_cover(
    node_type: str, node_count: int, reservations: Sequence[Reservation]
) -> tuple[int, list[str]]:
    """How many of the nodes the reservations of their family may cover, and those reservations."""
    family = [r for r in reservations if node_family(r.node_type) == node_family(node_type)]
    unit = node_units(node_type)
    if not family:
        return 0, []
    if unit is None:  # an unknown size: only reservations of the very type count, node for node
        exact = [r for r in family if r.node_type == node_type]
        return min(node_count, sum(r.count for r in exact)), [r.line() for r in exact]
    units = sum(r.count * (node_units(r.node_type) or 0.0) for r in family)
    return min(node_count, math.floor(units / unit)), [r.line() for r in family]


def monthly_saving(
    node_type: str,
    node_count: int,
    engine: str,
    region: str,
    *,
    reservations: Sequence[Reservation] = (),
    snapshot_bytes: int | None = None,
) -> Saving:
    """What deleting ``node_count`` nodes of ``node_type`` in ``region`` saves a month (module doc)."""
    table = price_table()
    hours = int(table["hoursPerMonth"])
    base = {
        "node_type": node_type,
        "node_count": node_count,
        "engine": engine,
        "region": region,
        "hours_per_month": hours,
        "price_table_date": str(table["date"]),
        "source": str(table["source"]),
    }
    prices = table["regions"].get(region)
    if prices is None:
        return Saving(
            **base,
            hourly_usd_per_node=None,
            monthly_usd=None,
            note=f"the price table has no prices for region {region}; add them from the source",
        )
    hourly = prices.get(node_type)
    if hourly is None:
        return Saving(
            **base,
            hourly_usd_per_node=None,
            monthly_usd=None,
            note=f"the price table has no price for {node_type} in {region}; add it from the source",
        )
    factor = float(table["engineFactors"].get(engine.lower(), 1.0))
    per_node = round(float(hourly) * factor, 6)
    covered, reserved = reserved_cover(node_type, node_count, reservations)
    rate = table.get("backupStorageUsdPerGibMonth")
    snapshot_gib = round(snapshot_bytes / GIB, 6) if snapshot_bytes is not None else None
    snapshot_usd = (
        round(snapshot_gib * float(rate), 2) if snapshot_gib is not None and rate is not None else None
    )
    return Saving(
        **base,
        hourly_usd_per_node=per_node,
        monthly_usd=round(per_node * hours * (node_count - covered) - (snapshot_usd or 0.0), 2),
        note=None if factor == 1.0 else f"{engine} is priced at {factor:g} x the Redis OSS price",
        reserved_nodes=covered,
        reservations=reserved,
        snapshot_gib=snapshot_gib,
        snapshot_usd_per_gib_month=float(rate) if rate is not None else None,
        snapshot_monthly_usd=snapshot_usd,
    )
