"""CheckPreconditions: read the world, refuse to start when it is not ready, record the plan.

Read-only for everything a migration changes. Everything the later steps change is decided here
and recorded: the functions and their managed values before the change, the values they will
get, and the security-group rule to add. The plan itself goes to the records bucket (it can be
far larger than a state's 256 KiB); the execution keeps its digests. A dry run stops after this.
"""

from __future__ import annotations

from typing import Any

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.clients.cache_names import read_cache_names
from redis_migration.clients.connected import elasticache_nodes
from redis_migration.clients.endpoints import CacheNames
from redis_migration.clients.environment import oversized_environment_problem, predicted_secret_arn
from redis_migration.clients.freeze_preflight import read_freeze_facts
from redis_migration.clients.preflight import (
    Discovery,
    FunctionFacts,
    discover_clients,
    environment_error_problem,
    management_marker,
    plan_aliases,
    read_function_facts,
    versions_naming_the_cache,
)
from redis_migration.clients.rewrites import plan_rewrite
from redis_migration.clients.waves import plan_waves
from redis_migration.data.source_group import read_source_group, source_group_problems, source_tls
from redis_migration.errors import InvalidInput, PreconditionFailed
from redis_migration.executions import refuse_concurrent_migration
from redis_migration.host.budget import assess_budget
from redis_migration.host.platform import platform_problems, read_platform
from redis_migration.host.rules import assess_host
from redis_migration.models import (
    REDIS_HOST,
    REDIS_PASSWORD_SECRET_ARN,
    REDIS_PORT,
    DataPlan,
    FunctionPlan,
    IngressPlan,
    InstanceFacts,
    ManagedValues,
    MigrationPlan,
    MigrationRequest,
    PlanDocument,
    PreconditionsInput,
    RedisEndpoint,
    StackSettings,
    is_secret_like_key,
)
from redis_migration.preflight_network import check_vpc_access, choose_redis_security_group
from redis_migration.records import plan_key, put_record, record_location, write_batches

SAMPLE_SIZE = 10
# Warnings carried in the plan summary (the payload); every one is in the plan record.
SUMMARY_WARNINGS = 10


def check_preconditions(given: PreconditionsInput, settings: StackSettings, aws: AwsClients) -> MigrationPlan:
    """Check every precondition (all problems are reported at once), record the plan, answer its summary."""
    request = given.request
    with aws_errors_as_transient():
        if not request.dry_run:
            refuse_concurrent_migration(given.state_machine_arn, given.execution_arn, aws)
        instance = describe_instance(request.instance_id, aws, settings.redis_security_group_id)
        # The OS as SSM's agent reports it: one whose packages offer no Redis 7 is refused here,
        # not at InstallRedis after the secret and the rule were made.
        platform = read_platform(request.instance_id, aws)
        problems: list[str] = []
        warnings: list[str] = []
        # Every name of the cache, before anything changes: who uses it has one definition.
        lookup = read_cache_names(
            request.elasticache_endpoint, settings.elasticache_replication_group_id, aws
        )
        problems += lookup.problems
        warnings += lookup.warnings
        unreadable: list[str] = []
        discovery = discover_clients(
            lookup.names, (instance.private_ip, request.redis_port), aws, unreadable, settings.stack_name
        )
        others_using_it = set(discovery.cache_users)
        if request.functions is None:
            problems += unreadable
        else:
            # An explicit list: what discovery finds beyond it is said (and refused by consistent
            # mode, in CheckData), never switched.
            warnings += unreadable
            others_using_it |= set(discovery.version_users)
            discovery.version_users = {
                name: versions
                for name, versions in discovery.version_users.items()
                if name in request.functions
            }
        configurations = function_configurations(request, aws, discovery)
        facts = read_function_facts(
            sorted({str(config["FunctionName"]) for config in configurations} | set(discovery.version_users)),
            aws,
            versions=discovery.versions,
        )
        versions_naming_the_cache(discovery, facts, lookup.names, problems=problems, warnings=warnings)
        # A consistent copy (asked for, or the default) records its baseline in S3 from the VPC.
        network = check_vpc_access(settings, aws, needs_s3=request.data_copy not in ("none", "warm"))
        secret_arn = existing_secret_arn(request.secret_name, aws)

    # The host first: what cannot be undone there (a maxmemory below the data already held, a
    # port another process holds, an existing Redis we cannot take over) is refused now.
    host = assess_host(given.host_before, request.redis_port, request.maxmemory, request.maxmemory_policy)
    # The instance's memory is shared with services that come first: Redis, its fork and what
    # already runs there must fit, and Redis gets limits that make it yield (host/budget.py).
    budget = assess_budget(given.host_before, request.maxmemory)
    os_problems, os_warnings = platform_problems(request.instance_id, platform)
    problems = [*os_problems, *host.problems, *budget.problems, *problems, *network.problems]
    warnings = [*os_warnings, *host.warnings, *budget.warnings, *warnings, *network.warnings]
    plans = [
        plan_function(
            config,
            request,
            instance,
            problems,
            facts=facts.get(str(config["FunctionName"])),
            warnings=warnings,
            cache=lookup.names,
        )
        for config in configurations
    ]
    if not plans and not problems:
        problems.append(
            f"no function uses Redis at {request.elasticache_endpoint} or {instance.private_ip}; "
            "list them in 'functions'"
        )
    problems += oversized_environments(configurations, plans, request, instance, secret_arn)
    data = data_plan(request, instance, configurations, plans, problems, facts=facts)
    with aws_errors_as_transient():
        # Every node serves clients (the replicas through the reader endpoint): each is asked who.
        data = data.model_copy(update={"source_nodes": elasticache_nodes(request.elasticache_endpoint, aws)})
    left_out = sorted(others_using_it - {plan.function_name for plan in plans})
    if left_out:
        # A partial list: consistent mode refuses it (CheckData), like waves; the others are told.
        data = data.model_copy(update={"left_out": left_out[:SAMPLE_SIZE], "left_out_count": len(left_out)})
        warnings.append(
            f"{len(left_out)} function(s) use ElastiCache and are not in 'functions'; they stay on "
            f"ElastiCache: {', '.join(left_out[:SAMPLE_SIZE])}{' ...' if len(left_out) > SAMPLE_SIZE else ''}"
        )
    if request.data_copy not in ("none", "warm") and data.functions_to_switch:
        # A consistent copy may freeze the writers: what AWS would do to them then (CheckData judges).
        with aws_errors_as_transient():
            data = data.model_copy(update={"freeze_facts": read_freeze_facts(configurations, aws)})
    token = settings.elasticache_auth_token_secret_name
    # ElastiCache's own settings (cluster mode, Global Datastore, TLS, token ...), before any change.
    with aws_errors_as_transient():
        group = read_source_group(request.elasticache_endpoint, aws)
    if group is not None:
        known = data.source.secret_arn is not None
        problems += source_group_problems(
            group,
            # A re-run whose functions all use the self-hosted Redis already reads no data (CheckData).
            data_read=data.requested != "none" and data.functions_to_switch > 0,
            secret_known=known,
            requested_tls=request.source_tls,
            token_secret_parameter=token,
        )
        endpoint = data.source.model_copy(update={"tls": source_tls(group, request.source_tls, known)})
        data = data.model_copy(update={"source_group": group, "source": endpoint})
    source_secret = secret_name_of(data.source.secret_arn) if data.source.secret_arn else None
    if data.requested != "none" and data.functions_to_switch and source_secret and source_secret != token:
        problems.append(
            f"sourceSecretArn: ElastiCache's token is in the secret {source_secret}, but the stack's data "
            f"steps may read only {token or 'no secret'} (stack parameter ElastiCacheAuthTokenSecretName): "
            'set it, or start with "dataCopy": "none"'
        )
    if problems:
        raise PreconditionFailed("; ".join(problems))

    target: ManagedValues = {
        REDIS_HOST: instance.private_ip,
        REDIS_PORT: str(request.redis_port),
        REDIS_PASSWORD_SECRET_ARN: secret_arn,
    }
    target.update(dict.fromkeys(request.remove_keys))
    execution_name = given.execution_arn.rsplit(":", 1)[-1]
    sources = {group for plan in plans for group in plan.security_group_ids}
    sources.update(settings.probe_security_groups)
    plans.sort(key=lambda plan: plan.function_name)
    ingress = IngressPlan(
        group_id=instance.security_group_id,
        port=request.redis_port,
        source_group_ids=sorted(sources),
        rule_description=f"Redis clients; added by redis-migration {execution_name}",
    )
    location = record_location(settings.records_bucket, given.state_machine_arn, given.execution_arn)
    with aws_errors_as_transient():
        batches = write_batches(location, plans, aws)
    try:
        waves, wave_notes = plan_waves(request.cutover_waves, batches)
    except InvalidInput as refused:
        raise PreconditionFailed(str(refused)) from None
    warnings += wave_notes
    if data is not None:
        data = data.model_copy(update={"waves": len(waves)})
    with aws_errors_as_transient():
        document = PlanDocument(
            execution_arn=given.execution_arn,
            kind="migration",
            request=request,
            instance=instance,
            target=target,
            functions=plans,
            batches=batches,
            warnings=warnings,
        )
        plan_sha256 = put_record(location, plan_key(location), document.to_json_dict(), aws)
    managed = [plan.function_name for plan in plans if plan.managed_by]
    if managed:
        warnings.insert(
            0,
            f"{len(managed)} function(s) are deployed by CloudFormation or Terraform and get the old values "
            "back on their next deploy unless their templates change: see the plan (redis-migration plan)",
        )
    more = len(warnings) - SUMMARY_WARNINGS
    return MigrationPlan(
        request=request,
        instance=instance,
        secret_name=request.secret_name,
        ingress=ingress,
        target=target,
        secret_arn=secret_arn,
        function_count=len(plans),
        function_sample=[plan.function_name for plan in plans[:SAMPLE_SIZE]],
        record=location,
        plan_sha256=plan_sha256,
        batches=batches,
        warnings=warnings[:SUMMARY_WARNINGS]
        + ([f"... and {more} more in the plan record"] if more > 0 else []),
        managed_function_count=len(managed),
        managed_function_sample=managed[:SAMPLE_SIZE],
        host_before=given.host_before,
        data=data,
        waves=waves,
        budget=budget.budget,
        limits=budget.limits,
    )


def plan_function(
    config: dict[str, Any],
    request: MigrationRequest,
    instance: InstanceFacts,
    problems: list[str],
    *,
    facts: FunctionFacts | None = None,
    warnings: list[str] | None = None,
    cache: CacheNames | None = None,
) -> FunctionPlan:
    """One function's plan entry; what stops it from being switched safely goes to ``problems``.

    ``cache``: every name of the ElastiCache (default: the configured endpoint alone). The entry
    records each variable that names it, its form and the value it gets (clients/rewrites.py).
    """
    name = config["FunctionName"]
    unreadable = environment_error_problem(config)
    if unreadable:
        problems.append(unreadable)
        return FunctionPlan(function_name=name, before={})
    variables: dict[str, str] = config.get("Environment", {}).get("Variables", {})
    vpc = config.get("VpcConfig", {})
    if vpc.get("VpcId") != instance.vpc_id:
        problems.append(
            f"function {name} is not in the instance's VPC {instance.vpc_id} "
            f"(its VPC: {vpc.get('VpcId') or 'none'}); it could not reach the new Redis"
        )
    plaintext = sorted(k for k in variables if is_secret_like_key(k))
    if plaintext:
        problems.append(
            f"function {name} keeps a Redis password in plain text in its environment "
            f"({', '.join(plaintext)}); move it to Secrets Manager first"
        )
    cache = cache or CacheNames.of([request.elasticache_endpoint])
    rewrite = plan_rewrite(
        name,
        variables,
        cache,
        host=instance.private_ip,
        port=request.redis_port,
        remove_keys=request.remove_keys,
        problems=problems,
    )
    if request.functions is not None and not (rewrite.names_cache or rewrite.names_self_hosted):
        host = variables.get(REDIS_HOST)
        problems.append(
            f"function {name} has no {REDIS_HOST} and no variable naming ElastiCache "
            f"{request.elasticache_endpoint}: it does not use it, nothing to switch"
            if host is None
            else f"function {name} uses another Redis ({REDIS_HOST}={host}) and no variable names "
            f"ElastiCache {request.elasticache_endpoint}; not switching it"
        )
    # Exactly the keys the cutover writes: the variables naming the cache, the secret's ARN, removeKeys.
    keys = list(dict.fromkeys([*rewrite.values, REDIS_PASSWORD_SECRET_ARN, *request.remove_keys]))
    facts = facts or FunctionFacts()
    aliases = plan_aliases(
        config,
        facts,
        cache,
        keys,
        problems=problems,
        warnings=[] if warnings is None else warnings,
    )
    return FunctionPlan(
        function_name=name,
        before={key: variables.get(key) for key in keys},
        security_group_ids=sorted(vpc.get("SecurityGroupIds", [])),
        aliases=aliases,
        managed_by=management_marker(facts.tags),
        rewrites=rewrite.values,
        forms=rewrite.forms,
    )


def oversized_environments(
    configurations: list[dict[str, Any]],
    plans: list[FunctionPlan],
    request: MigrationRequest,
    instance: InstanceFacts,
    secret_arn: str | None,
) -> list[str]:
    """Every function whose environment would pass Lambda's 4 KB once switched, by name and size: its
    own values after the switch (each variable rewritten in its form), the password secret's ARN as
    it is, or as it will be once created."""
    by_name = {plan.function_name: plan for plan in plans}
    found: list[str] = []
    for config in configurations:
        run_target: ManagedValues = {
            REDIS_HOST: instance.private_ip,
            REDIS_PORT: str(request.redis_port),
            REDIS_PASSWORD_SECRET_ARN: secret_arn
            or predicted_secret_arn(request.secret_name, str(config.get("FunctionArn") or "")),
        }
        run_target.update(dict.fromkeys(request.remove_keys))
        plan = by_name.get(str(config.get("FunctionName")))
        values = plan.values_after(run_target) if plan is not None else run_target
        problem = oversized_environment_problem(config, values)
        if problem:
            found.append(problem)
    return found


def secret_name_of(arn: str) -> str:
    """A secret's name from its ARN (``...:secret:<name>-<6 random characters>``)."""
    name = arn.split(":secret:", 1)[-1]
    return name[:-7] if len(name) > 7 and name[-7] == "-" else name


def data_plan(
    request: MigrationRequest,
    instance: InstanceFacts,
    configurations: list[dict[str, Any]],
    plans: list[FunctionPlan],
    problems: list[str],
    *,
    facts: dict[str, FunctionFacts] | None = None,
) -> DataPlan:
    """ElastiCache as the data's source, and what the data steps need to know about the functions.

    The source's password is found by its secret's ARN only: ``sourceSecretArn``, or the auth-token
    secret the functions name today (a ``*_SECRET_ARN`` variable other than ours); TLS follows the
    token (ElastiCache requires in-transit encryption for an AUTH token) unless ``sourceTls`` says.
    """
    host, _, port = request.elasticache_endpoint.partition(":")
    secret_arn = request.source_secret_arn
    if secret_arn is None:
        named = sorted(
            {
                value
                for config in configurations
                for key, value in (config.get("Environment") or {}).get("Variables", {}).items()
                if key.endswith("_SECRET_ARN")
                and key != REDIS_PASSWORD_SECRET_ARN
                and value.startswith("arn:")
                and ":secretsmanager:" in value
            }
        )
        if len(named) > 1 and request.data_copy in ("warm", "consistent"):
            problems.append(
                f"sourceSecretArn: the functions name {len(named)} different secrets ({', '.join(named)}); "
                "say which one holds ElastiCache's AUTH token"
            )
        secret_arn = named[0] if len(named) == 1 else None
    timeout, slowest = longest_writer_timeout(configurations, facts or {})
    return DataPlan(
        source=RedisEndpoint(
            host=host,
            port=int(port) if port.isdigit() else 6379,
            tls=request.source_tls if request.source_tls is not None else secret_arn is not None,
            secret_arn=secret_arn,
        ),
        requested=request.data_copy,
        functions_to_switch=sum(_switches(plan, instance) for plan in plans),
        max_function_timeout=timeout,
        max_freeze_seconds=request.max_freeze_seconds,
        slowest_writer=slowest,
    )


def longest_writer_timeout(
    configurations: list[dict[str, Any]], facts: dict[str, FunctionFacts]
) -> tuple[int, str | None]:
    """The longest timeout among the writers, ``$LATEST`` and every version an alias serves (a
    version keeps the timeout it was published with), and which writer has it."""
    found: list[tuple[int, str]] = []
    for config in configurations:
        name = str(config["FunctionName"])
        found.append((int(config.get("Timeout") or 3), name))
        known = facts.get(name, FunctionFacts())
        for alias in known.aliases:
            weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            for version in [alias.get("FunctionVersion"), *weights]:
                served = known.versions.get(str(version))
                if served is not None:
                    label = f"{name}:{alias.get('Name')} (version {version})"
                    found.append((int(served.get("Timeout") or 3), label))
    if not found:
        return 3, None
    timeout, slowest = max(found, key=lambda item: item[0])
    return timeout, slowest


def _switches(plan: FunctionPlan, instance: InstanceFacts) -> bool:
    """Whether the cutover moves this function (False: already on the self-hosted Redis)."""
    if plan.rewrites is None:
        return plan.before.get(REDIS_HOST) != instance.private_ip
    return any(
        plan.before.get(key) != value for key, value in plan.rewrites.items() if plan.forms.get(key) != "port"
    )


def describe_instance(instance_id: str, aws: AwsClients, redis_security_group_id: str = "") -> InstanceFacts:
    """The instance's address, VPC and Redis security group; it must exist and be running."""
    try:
        reservations = aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except Exception as error:
        if error_code(error).startswith("InvalidInstanceID"):
            raise PreconditionFailed(f"instance {instance_id} does not exist") from None
        raise
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    if not instances:
        raise PreconditionFailed(f"instance {instance_id} does not exist")
    instance = instances[0]
    state = instance.get("State", {}).get("Name", "unknown")
    if state != "running":
        raise PreconditionFailed(f"instance {instance_id} is {state}, not running")
    groups = instance.get("SecurityGroups", [])
    if not groups or "PrivateIpAddress" not in instance or "VpcId" not in instance:
        raise PreconditionFailed(f"instance {instance_id} has no private address, VPC or security group")
    vpc_id = instance["VpcId"]
    vpcs = aws.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    return InstanceFacts(
        instance_id=instance_id,
        private_ip=instance["PrivateIpAddress"],
        vpc_id=vpc_id,
        vpc_cidr=vpcs[0]["CidrBlock"],
        security_group_id=choose_redis_security_group(
            instance_id, [group["GroupId"] for group in groups], redis_security_group_id
        ),
        platform=instance.get("PlatformDetails", "Linux/UNIX"),
    )


def function_configurations(
    request: MigrationRequest, aws: AwsClients, discovery: Discovery
) -> list[dict[str, Any]]:
    """The listed functions, or every function that uses the cache or is already on ours (``discovery``)."""
    if request.functions is None:
        return discovery.clients
    configurations, missing = [], []
    for name in request.functions:
        try:
            configurations.append(dict(aws.lambda_.get_function_configuration(FunctionName=name)))
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            missing.append(name)
    if missing:
        raise PreconditionFailed(f"functions not found: {', '.join(missing)}")
    return configurations


def existing_secret_arn(secret_name: str, aws: AwsClients) -> str | None:
    """The password secret's ARN when it already exists (a re-run), else None."""
    try:
        return aws.secretsmanager.describe_secret(SecretId=secret_name)["ARN"]
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
