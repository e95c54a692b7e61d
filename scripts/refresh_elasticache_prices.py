"""Refresh the decommission's price table from the AWS Price List Bulk API (public; no credentials).

    python scripts/refresh_elasticache_prices.py [--region us-east-1 --region eu-west-1 ...]

Reads the ``AmazonElastiCache`` offer of each region the table lists (or the ones given), keeps the
on-demand hourly price of each node type of a Redis OSS ``Cache Instance``, and rewrites
``layers/shared/redis_migration/decommission/elasticache_on_demand_prices.json`` with today's date,
keeping its engine factors. It needs internet access; the offers are large (tens of MB a region).
https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/using-the-aws-price-list-bulk-api.html
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TABLE = (
    Path(__file__).resolve().parents[1]
    / "layers/shared/redis_migration/decommission/elasticache_on_demand_prices.json"
)
OFFER = (
    "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonElastiCache/current/{region}/index.json"
)
TIMEOUT_S = 300


def hourly_prices(offer: dict[str, Any]) -> dict[str, float]:
    """Node type -> USD per hour, for Redis OSS node-based clusters on demand."""
    skus = {
        sku: product["attributes"]["instanceType"]
        for sku, product in offer["products"].items()
        if product.get("productFamily") == "Cache Instance"
        and product["attributes"].get("cacheEngine") in {"Redis", "Redis OSS"}
        and product["attributes"].get("instanceType", "").startswith("cache.")
    }
    prices: dict[str, float] = {}
    for sku, terms in offer["terms"].get("OnDemand", {}).items():
        if sku not in skus:
            continue
        for term in terms.values():
            for dimension in term["priceDimensions"].values():
                usd = float(dimension["pricePerUnit"].get("USD", "0"))
                if dimension.get("unit") == "Hrs" and usd > 0:
                    prices[skus[sku]] = usd
    return dict(sorted(prices.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", action="append", help="a region to fetch (default: the table's)")
    arguments = parser.parse_args()
    table = json.loads(TABLE.read_text())
    regions = arguments.region or sorted(table["regions"])
    for region in regions:
        url = OFFER.format(region=region)
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 - a fixed https URL
            table["regions"][region] = hourly_prices(json.load(response))
        print(f"{region}: {len(table['regions'][region])} node types")
    table["date"] = datetime.now(UTC).date().isoformat()
    table["provenance"] = (
        "Fetched from the AWS Price List Bulk API by scripts/refresh_elasticache_prices.py "
        f"on {table['date']}."
    )
    TABLE.write_text(json.dumps(table, indent=2) + "\n")
    print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
