"""Retiring ElastiCache after the soak: the decommission run's domain (see docs/decommission.md).

A decommission follows a migration that succeeded at least ``soakHours`` ago. It refuses while
anything may still use ElastiCache (a function, a client, recent traffic) or while the resources
belong to an infrastructure-as-code tool, then, once approved, keeps a final snapshot, deletes the
replication group, its subnet group, its custom parameter group and its security groups, and
schedules the AUTH token's secret for deletion with a recovery window. Every step is idempotent:
"not found" counts as done, so a re-run finishes what an interrupted run left.
"""
