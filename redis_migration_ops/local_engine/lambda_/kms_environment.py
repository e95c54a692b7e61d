"""A function's environment encrypted with a customer managed KMS key is readable only by callers
who may decrypt it with that key.

What AWS does (Lambda API reference, ``EnvironmentResponse``: "The results of an operation to
update or read environment variables. If the operation succeeds, the response contains the
environment variables. If it fails, the response contains details about the error"; and
"Securing Lambda environment variables"):
https://docs.aws.amazon.com/lambda/latest/api/API_EnvironmentResponse.html
https://docs.aws.amazon.com/lambda/latest/api/API_EnvironmentError.html
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html

A function with ``KMSKeyArn`` has its variables encrypted with that key. ``GetFunctionConfiguration``,
``GetFunction`` and ``ListFunctions`` decrypt them for the caller (Lambda calls KMS with the
caller's credentials, ``kms:ViaService`` = ``lambda.<region>.amazonaws.com``, encryption context
``LambdaFunctionName``); a caller that may not ``kms:Decrypt`` with the key still gets the rest of
the configuration, with ``Environment`` = ``{"Error": {"ErrorCode": ..., "Message": ...}}`` and
*no* ``Variables`` (the call itself succeeds). A reader that takes a missing ``Variables`` for
"no variables" and writes the environment back erases them (issue 9, item 6).

moto 5.2.5 returns the variables to everyone. Here the decision is the IAM evaluation of
:mod:`iam_enforcement` (identity policies and the key policy) for the current principal; calls
outside any handler (the test harness, the rehearsal's own set-up and checks) are trusted.
"""

from __future__ import annotations

from typing import Any

from moto.awslambda import models as lambda_models

from redis_migration_ops.local_engine.iam.caller_identity import current_principal
from redis_migration_ops.local_engine.iam.enforcement import EvaluatedCall, IamRecorder, IamSettings, decide
from redis_migration_ops.local_engine.iam.resources import Check, World
from redis_migration_ops.local_engine.moto_patch import MotoPatch

DECRYPT_ERROR_CODE = "AccessDeniedException"


def decrypt_error_message(caller: str, key_arn: str) -> str:
    """Lambda's explanation when it could not decrypt a function's variables for a caller."""
    return (
        "Lambda was unable to decrypt the environment variables because KMS access was denied. "
        "Please check the function's KMS key settings. KMS Exception: AccessDeniedExceptionKMS Message: "
        f"User: {caller} is not authorized to perform: kms:Decrypt on resource: {key_arn} "
        "because no identity-based policy allows the kms:Decrypt action"
    )


class LambdaKmsEnvironment(MotoPatch):
    """Gap: moto shows KMS-encrypted variables to any caller.

    Fill: for a function with ``KMSKeyArn``, a principal whose ``kms:Decrypt`` on that key is not
    allowed gets ``Environment: {"Error": {...}}`` and no ``Variables`` (the evaluation is recorded
    like any other, ``via="lambda"``).
    """

    def __init__(self, recorder: IamRecorder, settings: IamSettings) -> None:
        super().__init__()
        self._recorder = recorder
        self._settings = settings

    def install(self) -> None:
        recorder, settings = self._recorder, self._settings
        function_cls = lambda_models.LambdaFunction
        original = function_cls.get_configuration

        def get_configuration(function: Any, on_create: bool = False) -> dict[str, Any]:
            configuration: dict[str, Any] = original(function, on_create=on_create)
            key = getattr(function, "kms_key_arn", None)
            principal = current_principal()
            if not key or principal is None or "Environment" not in configuration:
                return configuration
            world = World(settings.account_id, function.region, settings.partition)
            check = Check(
                "kms:Decrypt",
                world.key_arn(str(key)),
                {
                    "kms:ViaService": (f"lambda.{function.region}.amazonaws.com",),
                    "kms:EncryptionContext:LambdaFunctionName": (str(function.function_name),),
                    "kms:CallerAccount": (settings.account_id,),
                },
                via="lambda",
            )
            decision = decide(principal, check, world)
            recorder.add(
                EvaluatedCall(
                    principal=principal.name,
                    role_arn=principal.role_arn,
                    service="lambda",
                    operation="(decrypt environment)",
                    action=check.action,
                    resource=check.resource,
                    context=dict(check.context),
                    allowed=decision.allowed,
                    statement=decision.statement.label if decision.statement else None,
                    explicit_deny=decision.explicit_deny,
                    via=check.via,
                )
            )
            if not decision.allowed and settings.enforce:
                configuration["Environment"] = {
                    "Error": {
                        "ErrorCode": DECRYPT_ERROR_CODE,
                        "Message": decrypt_error_message(principal.assumed_role_arn, check.resource),
                    }
                }
            return configuration

        self._replace(function_cls, "get_configuration", get_configuration)
