"""SNS ``Publish``: what AWS accepts as a Subject and a Message.

From the SNS API reference of ``Publish``
(https://docs.aws.amazon.com/sns/latest/api/API_Publish.html):

- ``Subject``: "must be ASCII text that begins with a letter, number, or punctuation mark; must
  not include line breaks or control characters; and must be less than 100 characters long."
- ``Message``: at most 256 KB, and the limit is in bytes: "262,144 bytes, not 262,144 characters".

A request that breaks either is refused with ``InvalidParameter`` (HTTP 400). moto 5.2.5 accepts a
subject of exactly 100 characters, any characters in it, and counts the message in characters.
"""

from __future__ import annotations

from typing import Any

from moto.sns import models as sns_models
from moto.sns.exceptions import InvalidParameterValue

from redis_migration_ops.local_engine.moto_patch import MotoPatch

SUBJECT_MAX_CHARACTERS = 99  # "less than 100"
MESSAGE_MAX_BYTES = 262_144


def subject_problem(subject: str) -> str | None:
    """Why SNS refuses ``subject``, or None when it accepts it."""
    if len(subject) > SUBJECT_MAX_CHARACTERS:
        return f"Subject must be less than 100 characters (it has {len(subject)})"
    if not subject:
        return "Subject must not be empty"
    if not all(" " <= character <= "~" for character in subject):
        return "Subject must be printable ASCII without line breaks or control characters"
    if subject[0] == " ":
        return "Subject must begin with a letter, number or punctuation mark"
    return None


class SnsPublishLimits(MotoPatch):
    """Gap: moto's ``Publish`` checks the subject's length with ``<= 100``, not its characters, and
    the message's length in characters.

    Fill: ``Publish`` refuses, with ``InvalidParameter`` and a message naming the field, a subject
    that is 100 characters or longer, empty, not printable ASCII or holding a line break, and a
    message over 262,144 bytes of UTF-8.
    """

    def install(self) -> None:
        backend_cls = sns_models.SNSBackend
        original = backend_cls.publish

        def publish(backend: Any, message: str, arn: str | None, *args: Any, **kwargs: Any) -> str:
            subject = kwargs.get("subject", args[1] if len(args) > 1 else None)
            if subject is not None:
                problem = subject_problem(str(subject))
                if problem is not None:
                    raise InvalidParameterValue(f"Invalid parameter: Subject ({problem})")
            if message is not None and len(str(message).encode("utf-8")) > MESSAGE_MAX_BYTES:
                raise InvalidParameterValue("Invalid parameter: Message too long")
            result: str = original(backend, message, arn, *args, **kwargs)
            return result

        self._replace(backend_cls, "publish", publish)
