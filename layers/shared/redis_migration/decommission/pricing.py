"""What deleting the replication group saves: its nodes' on-demand price, from a dated table.

The table (``elasticache_on_demand_prices.json``, beside this module) holds USD per node-hour for
node-based clusters by region and node type, with its date and source; the month is AWS's 730
hours. Reserved nodes, backups and data transfer are not counted: the figure is what the on-demand
bill stops charging for the nodes. An unknown region or node type is said, never guessed.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from redis_migration.decommission.models import Saving

PRICE_TABLE = "elasticache_on_demand_prices.json"


@cache
def price_table() -> dict[str, Any]:
    """The dated price table shipped with the package."""
    text = resources.files("redis_migration.decommission").joinpath(PRICE_TABLE).read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def monthly_saving(node_type: str, node_count: int, engine: str, region: str) -> Saving:
    """The monthly on-demand price of ``node_count`` nodes of ``node_type`` in ``region``."""
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
    return Saving(
        **base,
        hourly_usd_per_node=per_node,
        monthly_usd=round(per_node * hours * node_count, 2),
        note=None if factor == 1.0 else f"{engine} is priced at {factor:g} x the Redis OSS price",
    )
