"""Reserved cache nodes: what the account has bought, answered by DescribeReservedCacheNodes.

AWS (https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DescribeReservedCacheNodes.html,
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_ReservedCacheNode.html): each
reservation has its ``ReservedCacheNodeId``, ``CacheNodeType``, ``CacheNodeCount``, ``StartTime``,
``Duration`` (seconds: one or three years), ``OfferingType`` (``No Upfront``, ``Partial Upfront``,
``All Upfront``), prices, ``RecurringCharges`` and a ``State`` (``payment-pending``, ``active``,
``payment-failed``, ``retired``); the filters are the reservation's id, the offering's id, the node
type, the duration (in years or seconds), the product description and the offering type. A
reservation is a billing commitment, not a resource: it is paid for its whole term whether or not
nodes run (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheNodes.Reserved.html), and
since October 2024 its discount applies to every size of its node family
(https://aws.amazon.com/blogs/database/new-size-flexibility-for-amazon-elasticache-reserved-nodes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core.responses import ActionResult
from moto.elasticache.exceptions import ElastiCacheException
from moto.elasticache.responses import ElastiCacheResponse

from redis_migration_ops.local_engine.moto_patch import MotoPatch

YEAR_SECONDS = 365 * 24 * 3600


@dataclass(frozen=True)
class ReservedNodes:
    """One purchased reservation, as the account holds it."""

    reservation_id: str
    node_type: str
    count: int
    start: datetime
    years: int = 1
    offering_type: str = "No Upfront"
    product_description: str = "redis"
    fixed_price: float = 0.0
    hourly_charge: float = 0.0
    offering_id: str = field(default="")

    @property
    def duration_seconds(self) -> int:
        return self.years * YEAR_SECONDS

    def state(self, now: datetime) -> str:
        """``active`` during its term, ``retired`` after (payment states are not modelled)."""
        return "active" if now < self.start + timedelta(seconds=self.duration_seconds) else "retired"


class ReservedCacheNodesRegistry:
    """The account's reservations (a described account's, or a test's)."""

    def __init__(self) -> None:
        self._reservations: list[ReservedNodes] = []
        self._lock = threading.Lock()

    def record(self, reservations: list[ReservedNodes]) -> None:
        """The account holds exactly these reservations from now on."""
        with self._lock:
            self._reservations = list(reservations)

    def all(self) -> list[ReservedNodes]:
        with self._lock:
            return list(self._reservations)


class ElastiCacheReservedNodes(MotoPatch):
    """Gap: moto 5.2.5 does not implement DescribeReservedCacheNodes (nor purchasing a reservation).

    Fill: DescribeReservedCacheNodes answers the recorded reservations with AWS's fields, state
    from the term and the clock, and AWS's filters (a ``Duration`` of ``1``/``3`` is years, else
    seconds); ``ReservedCacheNodeNotFound`` for an unknown id. One page (no ``Marker``).
    """

    def __init__(self, registry: ReservedCacheNodesRegistry) -> None:
        super().__init__()
        self._registry = registry

    def install(self) -> None:
        registry = self._registry

        def describe_reserved_cache_nodes(response: ElastiCacheResponse) -> ActionResult:
            wanted_id = response._get_param("ReservedCacheNodeId")
            filters = {
                "offering_id": response._get_param("ReservedCacheNodesOfferingId"),
                "node_type": response._get_param("CacheNodeType"),
                "product_description": response._get_param("ProductDescription"),
                "offering_type": response._get_param("OfferingType"),
            }
            duration = response._get_param("Duration")
            seconds = None
            if duration:
                seconds = int(duration) * YEAR_SECONDS if str(duration) in {"1", "3"} else int(duration)
            now = datetime.now(UTC)
            rows = [
                _row(reservation, response.current_account, response.region, now)
                for reservation in registry.all()
                if (wanted_id is None or reservation.reservation_id == wanted_id)
                and all(value is None or getattr(reservation, key) == value for key, value in filters.items())
                and (seconds is None or reservation.duration_seconds == seconds)
            ]
            if wanted_id is not None and not rows:
                raise ReservedCacheNodeNotFound(wanted_id)
            return ActionResult({"ReservedCacheNodes": rows})

        self._add(ElastiCacheResponse, "describe_reserved_cache_nodes", describe_reserved_cache_nodes)


class ReservedCacheNodeNotFound(ElastiCacheException):
    """AWS: ``ReservedCacheNodeNotFound`` (the ``ReservedCacheNodeNotFoundFault`` shape, HTTP 404)."""

    code = "ReservedCacheNodeNotFound"

    def __init__(self, reservation_id: str) -> None:
        super().__init__(f"Reserved cache node {reservation_id} not found.")


def _row(reservation: ReservedNodes, account_id: str, region: str, now: datetime) -> dict[str, Any]:
    arn = f"arn:aws:elasticache:{region}:{account_id}:reserved-instance:{reservation.reservation_id}"
    return {
        "ReservedCacheNodeId": reservation.reservation_id,
        "ReservedCacheNodesOfferingId": reservation.offering_id or f"offering-{reservation.reservation_id}",
        "CacheNodeType": reservation.node_type,
        "StartTime": reservation.start,
        "Duration": reservation.duration_seconds,
        "FixedPrice": reservation.fixed_price,
        "UsagePrice": 0.0,
        "CacheNodeCount": reservation.count,
        "ProductDescription": reservation.product_description,
        "OfferingType": reservation.offering_type,
        "State": reservation.state(now),
        "RecurringCharges": [
            {"RecurringChargeAmount": reservation.hourly_charge, "RecurringChargeFrequency": "Hourly"}
        ]
        if reservation.hourly_charge
        else [],
        "ReservationARN": arn,
    }
