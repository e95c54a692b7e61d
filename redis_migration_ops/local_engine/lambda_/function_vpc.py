"""A function's ``VpcConfig.VpcId`` is the VPC of its subnets."""

from __future__ import annotations

from typing import Any

from moto.awslambda import models as lambda_models
from moto.ec2.models import ec2_backends

from redis_migration_ops.local_engine.moto_patch import MotoPatch


class FunctionVpcId(MotoPatch):
    """Gap: moto reports a fixed fake ``VpcConfig.VpcId`` (``vpc-123abc``) for every function.

    Fill: report the VPC of the function's subnets (from moto's EC2 backend). When the subnets are
    unknown to moto, moto's answer stands.
    """

    def install(self) -> None:
        function_cls = lambda_models.LambdaFunction
        original: property = vars(function_cls)["vpc_config"]

        def vpc_config(function: Any) -> dict[str, Any] | None:
            config: dict[str, Any] | None = original.fget(function) if original.fget else None
            if not config or not config.get("SubnetIds"):
                return config
            vpc_ids = _vpcs_of_subnets(function.account_id, function.region, list(config["SubnetIds"]))
            if len(vpc_ids) == 1:
                config["VpcId"] = vpc_ids.pop()
            return config

        self._replace(function_cls, "vpc_config", property(vpc_config, original.fset))


def _vpcs_of_subnets(account_id: str, region: str, subnet_ids: list[str]) -> set[str]:
    ec2 = ec2_backends[account_id][region]
    known = {subnet.id: subnet.vpc_id for subnet in ec2.describe_subnets()}
    if not all(subnet_id in known for subnet_id in subnet_ids):
        return set()
    return {known[subnet_id] for subnet_id in subnet_ids}
