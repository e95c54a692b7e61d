"""The policies SAM attaches to the execution role it creates for a function or a state machine.

What ``sam deploy`` creates (AWS SAM developer guide: "AWS SAM policy templates",
``AWS::Serverless::Function`` ``Policies``/``Tracing``, ``AWS::Serverless::StateMachine``):
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-policy-templates.html
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-function.html

- a function's role: the AWS managed ``AWSLambdaBasicExecutionRole``, plus
  ``AWSXrayWriteOnlyAccess`` when ``Tracing: Active`` (on the function or in ``Globals``);
- a state machine's role: ``AWSXrayWriteOnlyAccess`` when ``Tracing.Enabled``;
- then each item of ``Policies``: an AWS managed policy by name or ARN, a customer managed policy
  of the template by reference, an inline ``{Statement: ...}`` document, or a SAM policy template
  (``LambdaInvokePolicy: {FunctionName: ...}``) expanded from SAM's own definition;
- with ``Role`` given, SAM adds nothing: the role's own ``Policies`` and ``ManagedPolicyArns``.

The documents of AWS managed policies come from moto's copy of them. The policy templates below
are SAM's definitions, copied for the ones this project can meet; a test compares them with the
``samtranslator`` that ``sam`` uses, when it is installed (``.venv-sam``). An unknown template or
policy name fails the deployment loudly instead of granting nothing (or everything).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from moto.iam.aws_managed_policies import aws_managed_policies_data


class PolicyError(ValueError):
    """A role's policy cannot be read the way SAM would create it."""


@dataclass(frozen=True)
class NamedPolicy:
    """One policy document attached to a role, resolved (no intrinsic functions left)."""

    name: str
    document: dict[str, Any]


def _sub(text: str, **variables: Any) -> dict[str, Any]:
    return {"Fn::Sub": [text, {name: {"Ref": reference} for name, reference in variables.items()}]}


# SAM's definitions (samtranslator/policy_templates_data/policy_templates.json), verbatim.
POLICY_TEMPLATES: dict[str, dict[str, Any]] = {
    "LambdaInvokePolicy": {
        "Statement": [
            {
                "Action": ["lambda:InvokeFunction"],
                "Effect": "Allow",
                "Resource": _sub(
                    "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${functionName}*",
                    functionName="FunctionName",
                ),
            }
        ]
    },
    "SNSPublishMessagePolicy": {
        "Statement": [
            {
                "Action": ["sns:Publish"],
                "Effect": "Allow",
                "Resource": _sub(
                    "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${topicName}",
                    topicName="TopicName",
                ),
            }
        ]
    },
    "CloudWatchPutMetricPolicy": {
        "Statement": [{"Action": ["cloudwatch:PutMetricData"], "Effect": "Allow", "Resource": "*"}]
    },
    "StepFunctionsExecutionPolicy": {
        "Statement": [
            {
                "Action": ["states:StartExecution"],
                "Effect": "Allow",
                "Resource": _sub(
                    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${stateMachineName}",
                    stateMachineName="StateMachineName",
                ),
            }
        ]
    },
    "KMSDecryptPolicy": {
        "Statement": [
            {
                "Action": "kms:Decrypt",
                "Effect": "Allow",
                "Resource": _sub(
                    "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/${keyId}", keyId="KeyId"
                ),
            }
        ]
    },
    "AWSSecretsManagerGetSecretValuePolicy": {
        "Statement": [
            {
                "Action": ["secretsmanager:GetSecretValue"],
                "Effect": "Allow",
                "Resource": _sub("${secretArn}", secretArn="SecretArn"),
            }
        ]
    },
}


@cache
def _managed_policies() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(aws_managed_policies_data)
    return data


def managed_policy(name_or_arn: str, partition: str = "aws") -> NamedPolicy:
    """An AWS managed policy by name (``AWSLambdaVPCAccessExecutionRole``) or ARN."""
    name = name_or_arn.rsplit("/", 1)[-1]
    if name_or_arn.startswith("arn:") and ":iam::aws:policy/" not in name_or_arn:
        raise PolicyError(f"{name_or_arn} is not an AWS managed policy")
    found = _managed_policies().get(name)
    if found is None:
        raise PolicyError(f"unknown AWS managed policy {name_or_arn}")
    return NamedPolicy(
        f"arn:{partition}:iam::aws:policy{found['Path']}{name}", copy.deepcopy(found["Document"])
    )


def _substitute_template_parameters(value: Any, parameters: Mapping[str, Any], template: str) -> Any:
    """Replace the template's ``{"Ref": Parameter}`` with the value the resource gave."""
    if isinstance(value, list):
        return [_substitute_template_parameters(item, parameters, template) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    if set(value) == {"Ref"} and not str(value["Ref"]).startswith("AWS::"):
        raise PolicyError(f"policy template {template}: parameter {value['Ref']} not given")
    return {key: _substitute_template_parameters(item, parameters, template) for key, item in value.items()}


def role_policies(
    owner: str,
    kind: str,
    props: Mapping[str, Any],
    *,
    function_globals: Mapping[str, Any],
    resolve: Callable[[Any], Any],
    customer_policies: Mapping[str, dict[str, Any]],
    partition: str = "aws",
) -> list[NamedPolicy]:
    """The policies of the role SAM creates for ``owner`` (a function or a state machine).

    ``resolve`` resolves intrinsic functions of the template; ``customer_policies`` maps the
    resolved ARN of each ``AWS::IAM::ManagedPolicy`` of the template to its document.
    """
    policies: list[NamedPolicy] = []
    if kind == "AWS::Serverless::Function":
        policies.append(managed_policy("AWSLambdaBasicExecutionRole", partition))
        tracing = props.get("Tracing", function_globals.get("Tracing"))
        if resolve(tracing) == "Active":
            policies.append(managed_policy("AWSXrayWriteOnlyAccess", partition))
    elif kind == "AWS::Serverless::StateMachine" and _enabled(resolve(props.get("Tracing"))):
        policies.append(managed_policy("AWSXrayWriteOnlyAccess", partition))
    items = props.get("Policies") or []
    if not isinstance(items, list):
        items = [items]
    for number, given in enumerate(items):
        name = f"{owner}RolePolicy{number}"
        item = given
        if isinstance(given, dict) and set(given) == {"Fn::If"}:
            # SAM keeps a conditional policy as an Fn::If (AWS::NoValue drops it): decide it now.
            item = resolve(given)
            if item is None:
                continue
        policies.append(_policy_item(name, item, resolve, customer_policies, partition))
    return policies


def _enabled(tracing: Any) -> bool:
    return isinstance(tracing, dict) and str(tracing.get("Enabled")).lower() == "true"


def _policy_item(
    name: str,
    item: Any,
    resolve: Callable[[Any], Any],
    customer_policies: Mapping[str, dict[str, Any]],
    partition: str,
) -> NamedPolicy:
    if isinstance(item, dict) and "Statement" in item:
        return NamedPolicy(name, resolve(item))
    if isinstance(item, dict) and len(item) == 1 and next(iter(item)) in POLICY_TEMPLATES:
        ((template, parameters),) = item.items()
        definition = _substitute_template_parameters(POLICY_TEMPLATES[template], parameters or {}, template)
        return NamedPolicy(f"{name} ({template})", resolve(definition))
    if (
        isinstance(item, dict)
        and len(item) == 1
        and not next(iter(item)).startswith("Fn::")
        and "Ref" not in item
    ):
        raise PolicyError(
            f"{name}: SAM policy template {next(iter(item))} is not known to the local engine; "
            "add its definition to sam_policies.POLICY_TEMPLATES"
        )
    reference = resolve(item)
    if not isinstance(reference, str):
        raise PolicyError(f"{name}: cannot read policy {item!r}")
    if reference in customer_policies:
        return NamedPolicy(reference, copy.deepcopy(customer_policies[reference]))
    return managed_policy(reference, partition)
