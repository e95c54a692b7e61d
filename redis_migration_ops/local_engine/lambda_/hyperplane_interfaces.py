"""A function attached to a VPC gets Lambda's Hyperplane network interfaces, shared per subnet and
security groups.

What AWS does ("Giving Lambda functions access to resources in an Amazon VPC", Hyperplane ENIs,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html): "The first time you attach a
function to a VPC using a particular subnet and security group combination, Lambda creates a
Hyperplane ENI. Other functions in your account that use the same subnet and security group
combination can also use this ENI." Every connection a function makes into the VPC leaves from
such an interface, so a server sees its address, never which function it was. EC2 describes the
interface with ``InterfaceType`` ``lambda``, ``RequesterManaged`` true, a ``RequesterId`` of
Lambda's role session (``<account>:awslambda_<n>``) and the description ``AWS Lambda VPC
ENI-<function>-<id>``, naming the function that created it (not every function that uses it).

Gap: moto creates no interface for a function. Fill: CreateFunction and
UpdateFunctionConfiguration with a ``VpcConfig`` make sure one interface exists for each of the
function's subnets with exactly its security groups (reused when another function made it).
Interfaces are not removed when a function leaves (Lambda reclaims them after weeks).
:func:`function_address` answers the address a function's connections leave from (its first
subnet's interface), which the engine gives the code that acts as the function
(``lambda_/client_identity.py``).
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
import uuid
from typing import Any

from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import lambda_simple_backends
from moto.ec2.models import ec2_backends

from redis_migration_ops.local_engine.moto_patch import MotoPatch

INTERFACE_TYPE = "lambda"
DESCRIPTION_PREFIX = "AWS Lambda VPC ENI-"

_LOCK = threading.Lock()
_SESSIONS = itertools.count(1)


def _attachment(function: Any) -> tuple[list[str], list[str]]:
    config = function.vpc_config or {}
    return list(config.get("SubnetIds") or []), sorted(config.get("SecurityGroupIds") or [])


def find_interface(account_id: str, region: str, subnet_id: str, group_ids: list[str]) -> Any | None:
    """The Lambda interface of this subnet with exactly these security groups, if one exists."""
    wanted = sorted(group_ids)
    for interface in ec2_backends[account_id][region].enis.values():
        if (
            interface.interface_type == INTERFACE_TYPE
            and interface.subnet.id == subnet_id
            and sorted(group.id for group in interface._group_set) == wanted
        ):
            return interface
    return None


def ensure_interfaces(account_id: str, region: str, function: Any) -> None:
    """Give ``function`` an interface for each of its subnets (shared with its security groups)."""
    subnets, groups = _attachment(function)
    if not subnets or not groups:
        return
    ec2 = ec2_backends[account_id][region]
    known = {subnet.id for subnet in ec2.describe_subnets()}
    with _LOCK:
        for subnet_id in subnets:
            if subnet_id not in known or find_interface(account_id, region, subnet_id, groups):
                continue
            interface = ec2.create_network_interface(
                subnet_id,
                _free_address(ec2, subnet_id) or [],  # none free: moto draws one
                group_ids=groups,
                description=f"{DESCRIPTION_PREFIX}{function.function_name}-{uuid.uuid4()}",
            )
            interface.interface_type = INTERFACE_TYPE
            interface.requester_managed = True
            interface.requester_id = f"{account_id}:awslambda_{next(_SESSIONS)}"
            interface.status = "in-use"


def _free_address(ec2: Any, subnet_id: str) -> str | None:
    """An address of the subnet no interface holds, from the top of its range (moto draws at random,
    and two interfaces with one address would make a client two things at once)."""
    used = {
        str(address.get("PrivateIpAddress"))
        for interface in ec2.enis.values()
        for address in interface.private_ip_addresses
    }
    network = ipaddress.IPv4Network(ec2.get_subnet(subnet_id).cidr_block)
    # AWS reserves the first four addresses and the last one of every subnet.
    lowest, candidate = int(network.network_address) + 4, int(network.broadcast_address) - 1
    while candidate >= lowest:
        address = str(ipaddress.IPv4Address(candidate))
        if address not in used:
            return address
        candidate -= 1
    return None


def function_address(account_id: str, region: str, function_name: str) -> str | None:
    """The private IP a function's connections leave from (its first subnet's interface), or None
    when the function is not attached to a VPC (it cannot reach anything inside one)."""
    try:
        function = lambda_simple_backends[account_id][region].get_function(function_name)
    except Exception:  # moto's not-found: no such function, no address
        return None
    subnets, groups = _attachment(function)
    if not subnets or not groups:
        return None
    ensure_interfaces(account_id, region, function)
    interface = find_interface(account_id, region, subnets[0], groups)
    return None if interface is None else str(interface.private_ip_address)


class LambdaHyperplaneInterfaces(MotoPatch):
    """Gap and fill: see the module docstring."""

    def install(self) -> None:
        original_create = LambdaBackend.create_function
        original_update = LambdaBackend.update_function_configuration

        def create_function(backend: LambdaBackend, spec: dict[str, Any]) -> Any:
            function = original_create(backend, spec)
            ensure_interfaces(backend.account_id, backend.region_name, function)
            return function

        def update_function_configuration(
            backend: LambdaBackend, function_name: str, qualifier: str, body: dict[str, Any]
        ) -> Any:
            answer = original_update(backend, function_name, qualifier, body)
            if "VpcConfig" in body:
                function = backend.get_function(function_name, qualifier)
                ensure_interfaces(backend.account_id, backend.region_name, function)
            return answer

        self._replace(LambdaBackend, "create_function", create_function)
        self._replace(LambdaBackend, "update_function_configuration", update_function_configuration)
