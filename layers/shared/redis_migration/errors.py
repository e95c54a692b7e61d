"""Named errors. The state machine refers to them by class name (Lambda's ``errorType``).

Transient errors are retried by the state machine with backoff and jitter; every other
error here is permanent and is caught and routed (never retried).
"""

from __future__ import annotations


class MigrationError(Exception):
    """Base of every error this package raises on purpose."""


class TransientError(MigrationError):
    """A call that may succeed if tried again (throttling, a service hiccup, a timeout)."""


class InvalidInput(MigrationError):
    """The execution input (or a step's input) does not validate; nothing was changed."""


class PreconditionFailed(MigrationError):
    """The world is not in a state where the migration may start; nothing was changed."""


class MigrationAlreadyRunning(PreconditionFailed):
    """Another execution is migrating the same environment."""


class InstallFailed(MigrationError):
    """The install command failed on the host (its result line names the reason)."""


class InstallTimedOut(MigrationError):
    """The install command did not finish within the allowed time."""


class ProbeFailed(MigrationError):
    """Redis did not pass one or more checks; the message names each failed check.

    ``report`` carries the probe's full report (every check, passed or not) for callers that
    want more than the message.
    """

    def __init__(self, message: str, *, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class FunctionChangedConcurrently(MigrationError):
    """A function's configuration changed between our read and our write (RevisionId mismatch)."""


class FunctionUpdateFailed(MigrationError):
    """Lambda reported that a configuration update did not finish successfully."""


class CutoverVerificationFailed(MigrationError):
    """After the cutover a function does not carry the values this run wrote."""


class RecordUnreadable(MigrationError):
    """A run's record in S3 is missing or does not match the digest Step Functions recorded."""


class RollbackRefused(MigrationError):
    """``rollbackOf`` does not name a succeeded migration of this state machine; nothing changed."""


class FunctionEnvironmentUnreadable(MigrationError):
    """Lambda returned a function's environment with ``Error`` and no variables (KMS, permissions)."""


class RuleNotRevoked(MigrationError):
    """EC2 reported a security-group rule as unknown instead of revoking it."""


class HostInspectionFailed(MigrationError):
    """The read-only inspection of the host failed (its result line names the reason)."""


class HostRevertFailed(MigrationError):
    """Putting the host back as before the run failed; what is left is named."""


class ConcurrencyRefused(MigrationError):
    """Lambda refused a reserved concurrency (the account keeps a minimum unreserved)."""


class FreezeFailed(MigrationError):
    """Some functions of a batch could not be frozen (named): they could still write."""


class UnfreezeFailed(MigrationError):
    """Some functions of a batch could not get their reserved concurrency back (named)."""


class FreezeTooLong(MigrationError):
    """The consistent mode's copy did not finish within maxFreezeSeconds: the writers are unfrozen."""


class MetricsUnreadable(MigrationError):
    """CloudWatch would not give a metric the bake needs (a permission, a metric it refuses)."""


class BakeRecordMismatch(MigrationError):
    """A bake check was given a baseline or progress that belongs to another run or window."""


class HostServicesRefused(MigrationError):
    """A host service cannot be switched as asked (no such unit, no environment file, a Redis
    password in plain text in it); nothing was changed on the host."""


class HostServicesFailed(MigrationError):
    """Switching (or restoring) a host service failed part-way; its result line names the reason."""
