"""New buckets have ACLs disabled (S3 Object Ownership "Bucket owner enforced"), as on AWS.

AWS (https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html): "By default,
Object Ownership is set to the Bucket owner enforced setting and all ACLs are disabled"; a bucket
created with ``ObjectOwnership`` (``x-amz-object-ownership``: ``BucketOwnerPreferred``,
``ObjectWriter``) or changed with ``PutBucketOwnershipControls`` has them enabled. With ACLs
disabled "ACLs no longer affect permissions", and "requests to set ACLs or update ACLs fail with a
400 error and return the AccessControlListNotSupported error code. Requests to read ACLs are still
supported" and show only the owner's full control
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-ownership-error-responses.html).

This matters to the decommission's export: ElastiCache's documented way into a bucket of a default
Region is an ACL grant to its canonical user, which such a bucket cannot take.
"""

from __future__ import annotations

from typing import Any

from moto.s3.exceptions import S3ClientError
from moto.s3.models import OWNER, FakeAcl, FakeBucket, S3Backend

from redis_migration_ops.local_engine.moto_patch import MotoPatch

BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"


class AccessControlListNotSupported(S3ClientError):
    code = "AccessControlListNotSupported"

    def __init__(self) -> None:
        super().__init__("AccessControlListNotSupported", "The bucket does not allow ACLs")


def acls_disabled(bucket: FakeBucket) -> bool:
    """Whether the bucket's Object Ownership is Bucket owner enforced (its ACLs count for nothing)."""
    # moto types the rule as a dict but keeps the string it was given (the header, the XML body).
    rule: object = bucket.ownership_rule
    return rule == BUCKET_OWNER_ENFORCED


def _only_the_owner(acl: FakeAcl | None) -> bool:
    return acl is None or all(
        grantee.id == OWNER and grant.permissions == ["FULL_CONTROL"]
        for grant in acl.grants
        for grantee in grant.grantees
    )


class S3ObjectOwnership(MotoPatch):
    """Gap: moto 5.2.5 creates buckets with ACLs enabled and no ownership controls, and takes any ACL.

    Fill: a bucket created without ``ObjectOwnership`` gets ``BucketOwnerEnforced`` (moto's own
    handling of the header still applies an explicit one), and PutBucketAcl on such a bucket fails
    with ``AccessControlListNotSupported`` unless it grants only the owner's full control.
    """

    def install(self) -> None:
        original_create = S3Backend.create_bucket
        original_put_acl = S3Backend.put_bucket_acl

        def create_bucket(backend: S3Backend, *args: Any, **kwargs: Any) -> FakeBucket:
            bucket = original_create(backend, *args, **kwargs)
            if bucket.ownership_rule is None:
                setattr(bucket, "ownership_rule", BUCKET_OWNER_ENFORCED)  # noqa: B010 - see acls_disabled
            return bucket

        def put_bucket_acl(backend: S3Backend, bucket_name: str, acl: FakeAcl | None) -> None:
            if acls_disabled(backend.get_bucket(bucket_name)) and not _only_the_owner(acl):
                raise AccessControlListNotSupported()
            original_put_acl(backend, bucket_name, acl)

        self._replace(S3Backend, "create_bucket", create_bucket)
        self._replace(S3Backend, "put_bucket_acl", put_bucket_acl)
