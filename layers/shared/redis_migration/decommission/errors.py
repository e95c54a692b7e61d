"""Named errors of the decommission. The state machine refers to them by class name."""

from __future__ import annotations

from redis_migration.errors import MigrationError


class DecommissionRefused(MigrationError):
    """The decommission cannot start (what it names is not a succeeded migration, or nothing is left
    to decommission); nothing was changed."""


class CacheResourceInUse(MigrationError):
    """ElastiCache or EC2 answered that the resource is still in use (the replication group's nodes
    are being torn down). Retried by the state machine with backoff: it clears by itself."""


class FinalSnapshotFailed(MigrationError):
    """The final snapshot ended in status ``failed`` (or vanished); nothing was deleted."""


class FinalSnapshotMissing(MigrationError):
    """The replication group would be deleted without an available final snapshot: refused."""


class SnapshotExportFailed(MigrationError):
    """The exported snapshot is missing from the bucket or its file is not an RDB file."""


class SecurityGroupStillReferenced(MigrationError):
    """A security group is referenced by rules this run may not revoke (another account or VPC)."""


class ReplicationGroupNotDeleted(MigrationError):
    """The replication group is in a state that does not allow its deletion (the message says which)."""
