"""Run the real state machine, handlers and template in-process, on moto, without AWS.

``LocalEngine`` starts ``mock_aws`` with moto's Step Functions interpreter, installs the behaviours of
the modules beside this one (one per AWS behaviour moto lacks), creates the template's resources from the
template's own properties and runs executions. See DESIGN.md, "Running without AWS".

Typical use::

    with LocalEngine(repo_root) as engine:
        stack = engine.deploy({"ProjectName": "campaign"})
        arn = engine.start_execution({"environment": "dev"}, name="rehearsal-1")
        result = engine.wait_for_execution(arn, timeout_s=60)
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import boto3
import botocore.loaders
from moto import mock_aws
from moto.awslambda_simple.models import lambda_simple_backends
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.kms.models import kms_backends

from redis_migration_ops.local_engine.cloudwatch.metric_data import GetMetricDataLimits
from redis_migration_ops.local_engine.ec2.client_addresses import acting_as_address, current_client_address
from redis_migration_ops.local_engine.ec2.network_guard import AddressMap, NetworkGuard
from redis_migration_ops.local_engine.ec2.security_group_dependencies import SecurityGroupDependencies
from redis_migration_ops.local_engine.elasticache.deletion import ElastiCacheReplicationGroupDeletion
from redis_migration_ops.local_engine.elasticache.global_datastore import ElastiCacheGlobalDatastore
from redis_migration_ops.local_engine.elasticache.member_clusters import (
    ElastiCacheMemberClusters,
    name_endpoint,
)
from redis_migration_ops.local_engine.elasticache.metrics import ElastiCacheMetrics, publish_usage
from redis_migration_ops.local_engine.elasticache.parameter_groups import ElastiCacheParameterGroups
from redis_migration_ops.local_engine.elasticache.reserved_nodes import (
    ElastiCacheReservedNodes,
    ReservedCacheNodesRegistry,
    ReservedNodes,
)
from redis_migration_ops.local_engine.elasticache.snapshots import ElastiCacheSnapshots
from redis_migration_ops.local_engine.elasticache.subnet_groups import ElastiCacheSubnetGroupDeletion
from redis_migration_ops.local_engine.elasticache.timing import (
    ElastiCacheOperations,
    ElastiCacheTimings,
    VirtualClock,
)
from redis_migration_ops.local_engine.errors import LocalEngineError
from redis_migration_ops.local_engine.iam.caller_identity import Principal, ThreadContextPropagation
from redis_migration_ops.local_engine.iam.enforcement import (
    EvaluatedCall,
    IamEnforcement,
    IamRecorder,
    IamSettings,
    PrincipalRegistry,
    decide,
    principal_for,
)
from redis_migration_ops.local_engine.iam.policy import Decision, Statement
from redis_migration_ops.local_engine.iam.resources import Check, World
from redis_migration_ops.local_engine.lambda_.client_identity import (
    acting_as_function,
    current_client_function,
)
from redis_migration_ops.local_engine.lambda_.environment_size import LambdaEnvironmentSize
from redis_migration_ops.local_engine.lambda_.function_vpc import FunctionVpcId
from redis_migration_ops.local_engine.lambda_.hyperplane_interfaces import (
    LambdaHyperplaneInterfaces,
    function_address,
)
from redis_migration_ops.local_engine.lambda_.in_process import FunctionRegistry, InProcessLambda
from redis_migration_ops.local_engine.lambda_.kms_environment import LambdaKmsEnvironment
from redis_migration_ops.local_engine.lambda_.metrics import LambdaMetrics
from redis_migration_ops.local_engine.lambda_.provisioned_concurrency import LambdaProvisionedConcurrency
from redis_migration_ops.local_engine.lambda_.revision_id import LambdaRevisionId
from redis_migration_ops.local_engine.lambda_.running_invocations import FunctionLimits, RunningInvocations
from redis_migration_ops.local_engine.lambda_.sqs_event_source import SqsEventSourcePolling
from redis_migration_ops.local_engine.lambda_.update_latency import LambdaUpdateLatency
from redis_migration_ops.local_engine.lambda_.versions import LambdaVersionsAndAliases
from redis_migration_ops.local_engine.moto_patch import MotoPatch
from redis_migration_ops.local_engine.s3.object_ownership import S3ObjectOwnership
from redis_migration_ops.local_engine.sns.publish_limits import SnsPublishLimits
from redis_migration_ops.local_engine.ssm.instance_information import (
    ManagedInstances,
    Platform,
    SsmInstanceInformation,
)
from redis_migration_ops.local_engine.ssm.run_command import Sandbox, SandboxSsm, SentCommand, SsmSandboxes
from redis_migration_ops.local_engine.ssm.waiter_wakeup import SsmWaiterWakeup
from redis_migration_ops.local_engine.stepfunctions.asl_parse_cache import AslParseCache
from redis_migration_ops.local_engine.stepfunctions.failure_injection import (
    INJECTED_ERROR,
    FailureInjection,
    FailureInjector,
)
from redis_migration_ops.local_engine.stepfunctions.instant_waits import (
    InstantWaits,
    WaitRecord,
    WaitRecorder,
)
from redis_migration_ops.local_engine.stepfunctions.jsonata_evaluator import JSONataEvaluator
from redis_migration_ops.local_engine.stepfunctions.lambda_unknown import LambdaUnknownError
from redis_migration_ops.local_engine.stepfunctions.state_data_limit import StateDataLimit
from redis_migration_ops.local_engine.stepfunctions.stop_execution import StopExecutionWakesTaskTokens
from redis_migration_ops.local_engine.stepfunctions.workflow_clock import WorkflowClock
from redis_migration_ops.local_engine.template import (
    FunctionSpec,
    KeySpec,
    ResolvedTemplate,
    resolve_template,
)

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

    from redis_migration_ops.local_engine.ec2.private_network import PrivateNetwork

_POLL_INTERVAL_S = 0.05
_SHUTDOWN_GRACE_S = 10.0
_ASSUME_ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


_INTERPRETER_LOG = logging.getLogger("moto.stepfunctions.parser")


@dataclass(frozen=True)
class DeployedStack:
    """What :meth:`LocalEngine.deploy` created, by logical id."""

    stack_name: str
    region: str
    account_id: str
    parameters: dict[str, str]
    physical_ids: dict[str, str]
    function_names: dict[str, str]
    function_arns: dict[str, str]
    state_machine_arns: dict[str, str]
    topic_arns: dict[str, str]
    environment: dict[str, str]
    outputs: dict[str, Any]
    unresolved_outputs: dict[str, str] = field(default_factory=dict)
    skipped_resources: dict[str, str] = field(default_factory=dict)

    def state_machine_arn(self, logical_id: str | None = None) -> str:
        """The ARN of ``logical_id``, or of the only state machine when none is named."""
        if logical_id is not None:
            return self.state_machine_arns[logical_id]
        if len(self.state_machine_arns) != 1:
            raise LocalEngineError(f"name one of the state machines {sorted(self.state_machine_arns)}")
        return next(iter(self.state_machine_arns.values()))


class LocalEngine:
    """The template's workflow on moto, in this process (a context manager)."""

    def __init__(
        self,
        repo_root: Path,
        template_path: Path | None = None,
        *,
        region: str = "us-east-1",
        stack_name: str = "redis-migration-local",
        lambda_update_seconds: float = 0.0,
        enforce_iam: bool = True,
        elasticache_timings: ElastiCacheTimings | None = None,
    ) -> None:
        """``lambda_update_seconds``: how long a Lambda update stays ``InProgress`` (AWS: seconds to
        a minute; 0 keeps updates instant, see ``lambda_update_latency``). ``enforce_iam``: deny
        a handler's call its role does not allow, as AWS does (False: evaluate and record only;
        see ``iam_enforcement``). ``elasticache_timings``: how long ElastiCache's snapshots, exports and
        deletions take on the workflow's clock (``elasticache_timing``)."""
        self.repo_root = repo_root.resolve()
        template = template_path if template_path is not None else Path("template.yaml")
        self.template_path = template if template.is_absolute() else self.repo_root / template
        self.region = region
        self.stack_name = stack_name
        self.account_id = DEFAULT_ACCOUNT_ID
        self._registry = FunctionRegistry()
        self._waits = WaitRecorder()
        self._injector = FailureInjector()
        self._ssm = SsmSandboxes()
        self._managed = ManagedInstances()
        self._reserved_nodes = ReservedCacheNodesRegistry()
        self._routes = AddressMap()
        self._routes.client_address = self._client_address
        self._principals = PrincipalRegistry()
        self._iam_calls = IamRecorder()
        self._iam = IamSettings(enforce=enforce_iam, account_id=self.account_id)
        self._principal_by_name: dict[str, Principal] = {}
        self._update_latency = LambdaUpdateLatency(lambda_update_seconds)
        self._elasticache = ElastiCacheOperations(
            VirtualClock(self._waits), elasticache_timings or ElastiCacheTimings()
        )
        self._clock = WorkflowClock(self._waits)
        self._lambda_metrics = LambdaMetrics(self._waits, self.account_id, region)
        self._sqs_polling = SqsEventSourcePolling(self._waits, self.account_id, region)
        self._elasticache_metrics = ElastiCacheMetrics()
        self._invocations = RunningInvocations(self._function_limits)
        self._function_timeouts: dict[str, int] = {}
        self._patches: list[MotoPatch] = [
            JSONataEvaluator(),
            StateDataLimit(),
            InstantWaits(self._waits, self._wait_idle),
            # Before every listener that stamps what a wait stands for: they see the clock moved.
            self._clock,
            FailureInjection(self._injector),
            StopExecutionWakesTaskTokens(),
            InProcessLambda(self._registry),
            LambdaUnknownError(),
            LambdaRevisionId(),
            LambdaEnvironmentSize(),
            LambdaProvisionedConcurrency(),
            LambdaVersionsAndAliases(),
            self._update_latency,
            FunctionVpcId(),
            LambdaHyperplaneInterfaces(),
            SandboxSsm(self._ssm),
            SsmInstanceInformation(self._ssm, self._managed),
            NetworkGuard(self._routes),
            SnsPublishLimits(),
            S3ObjectOwnership(),
            ThreadContextPropagation(),
            IamEnforcement(self._principals, self._iam_calls, self._iam),
            LambdaKmsEnvironment(self._iam_calls, self._iam),
            ElastiCacheMemberClusters(),
            ElastiCacheGlobalDatastore(),
            ElastiCacheReplicationGroupDeletion(self._elasticache),
            ElastiCacheSnapshots(self._elasticache),
            ElastiCacheSubnetGroupDeletion(self._elasticache),
            ElastiCacheParameterGroups(self._elasticache),
            ElastiCacheReservedNodes(self._reserved_nodes),
            SecurityGroupDependencies(self._elasticache),
            GetMetricDataLimits(),
            AslParseCache(),
            SsmWaiterWakeup(self._ssm),
            self._lambda_metrics,
            self._elasticache_metrics,
            self._sqs_polling,
        ]
        self._mock: Any = None
        self._session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}
        self._client_lock = threading.Lock()
        self._saved_environ: dict[str, str | None] = {}
        self._added_sys_path: list[str] = []
        self._stack: DeployedStack | None = None
        self._definitions: dict[str, dict[str, Any]] = {}
        self._executions: list[str] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._mock is not None:
            raise LocalEngineError("the engine is already running")
        self._set_environ(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_SECURITY_TOKEN": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_PROFILE": None,
                "AWS_CONFIG_FILE": None,
                "AWS_SHARED_CREDENTIALS_FILE": None,
            }
        )
        self._mock = mock_aws(
            config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        )
        self._mock.start()
        # moto's interpreter logs every caught task failure at ERROR with its whole parse tree;
        # the execution history already records each failure, so those lines are only noise.
        self._interpreter_log_level = _INTERPRETER_LOG.level
        _INTERPRETER_LOG.setLevel(logging.CRITICAL)
        try:
            for patch in self._patches:
                patch.install()
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        deadline = time.monotonic() + _SHUTDOWN_GRACE_S
        unfinished: list[str] = []
        if self._mock is not None:
            unfinished = self._stop_running_executions(deadline)
            unfinished += self._ssm.join(deadline)
        for patch in reversed(self._patches):
            patch.uninstall()
        self._clients.clear()
        self._session = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
            _INTERPRETER_LOG.setLevel(self._interpreter_log_level)
        self._registry.forget_modules()
        for entry in self._added_sys_path:
            if entry in sys.path:
                sys.path.remove(entry)
        self._added_sys_path.clear()
        self._restore_environ()
        if unfinished:
            raise LocalEngineError(f"still running when the engine stopped: {unfinished}")

    def _stop_running_executions(self, deadline: float) -> list[str]:
        client = self._sfn()
        for arn in self._executions:
            if client.describe_execution(executionArn=arn)["status"] == "RUNNING":
                client.stop_execution(executionArn=arn, cause="the local engine is stopping")
        still_running = []
        for arn in self._executions:
            try:
                self.wait_for_execution(arn, timeout_s=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                still_running.append(arn)
        return still_running

    def _set_environ(self, values: Mapping[str, str | None]) -> None:
        for key, value in values.items():
            if key not in self._saved_environ:
                self._saved_environ[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _restore_environ(self) -> None:
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ.clear()

    def _require_running(self) -> None:
        if self._mock is None:
            raise LocalEngineError("use the engine inside `with LocalEngine(...) as engine:`")

    # -- clients -------------------------------------------------------------------------------

    def session(self) -> boto3.Session:
        """A boto3 session for code running inside the engine (its region, the fake credentials)."""
        self._require_running()
        # The credentials are the fake ones of the environment set in __enter__. One session for
        # the engine's life: building a session loads botocore's models again (~0.3 s a time).
        with self._client_lock:
            if self._session is None:
                self._session = boto3.Session(region_name=self.region)
                # Every engine of this process reads botocore's service models through one loader:
                # each new session would parse them again (about 1.5 s for a rehearsal's clients).
                self._session._session.register_component("data_loader", _shared_data_loader())
            return self._session

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` that talks to the engine's moto backends (cached)."""
        session = self.session()
        with self._client_lock:
            if service not in self._clients:
                self._clients[service] = session.client(service)  # type: ignore[call-overload]
            return self._clients[service]

    def _sfn(self) -> SFNClient:
        return cast("SFNClient", self.client("stepfunctions"))

    # -- deployment ----------------------------------------------------------------------------

    def deploy(self, parameters: Mapping[str, str] | None = None) -> DeployedStack:
        """Create the template's resources in moto (once per engine) and answer what was created."""
        self._require_running()
        if self._stack is not None:
            raise LocalEngineError("the template is already deployed in this engine")
        resolved = resolve_template(
            self.template_path,
            parameters or {},
            stack_name=self.stack_name,
            region=self.region,
            account_id=self.account_id,
        )
        environment = resolved.shared_environment()
        self._set_environ(environment)
        for layer_dir in resolved.layer_dirs:
            entry = str(layer_dir)
            if entry not in sys.path:
                sys.path.insert(0, entry)
                self._added_sys_path.append(entry)
        self._create_roles(resolved)
        for key in resolved.keys:
            self._create_key(key)
        for topic in resolved.topics:
            attributes = {"KmsMasterKeyId": topic.kms_master_key_id} if topic.kms_master_key_id else {}
            self.session().client("sns").create_topic(Name=topic.name, Attributes=attributes)
        for bucket in resolved.buckets:
            # Outside us-east-1, S3 (and moto) require the region as the location constraint.
            location = {} if self.region == "us-east-1" else {"LocationConstraint": self.region}
            self.client("s3").create_bucket(
                Bucket=bucket.name, **({"CreateBucketConfiguration": location} if location else {})
            )
            if bucket.versioned:
                self.client("s3").put_bucket_versioning(
                    Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"}
                )
        for document in resolved.documents:
            self.client("ssm").create_document(
                Name=document.name,
                Content=document.content,
                DocumentType=document.document_type,
                DocumentFormat=document.document_format,
            )
        for function in resolved.functions:
            self._create_function(function)
        stepfunctions = self._sfn()
        for machine in resolved.state_machines:
            if machine.type not in ("STANDARD", "EXPRESS"):
                raise LocalEngineError(f"state machine {machine.logical_id}: unknown Type {machine.type}")
            stepfunctions.create_state_machine(
                name=machine.name,
                definition=machine.definition,
                roleArn=machine.role_arn,
                type="EXPRESS" if machine.type == "EXPRESS" else "STANDARD",
            )
            self._definitions[machine.arn] = json.loads(machine.definition)
            principal = principal_for(
                machine.logical_id, machine.role_arn, machine.name, machine.policies, self.account_id
            )
            self._principals.add_state_machine(machine.arn, principal)
            self._principal_by_name[machine.logical_id] = principal
        self._stack = DeployedStack(
            stack_name=self.stack_name,
            region=self.region,
            account_id=self.account_id,
            parameters=resolved.parameters,
            physical_ids=resolved.physical_ids,
            function_names={spec.logical_id: spec.name for spec in resolved.functions},
            function_arns={spec.logical_id: spec.arn for spec in resolved.functions},
            state_machine_arns={spec.logical_id: spec.arn for spec in resolved.state_machines},
            topic_arns={spec.logical_id: spec.arn for spec in resolved.topics},
            environment=environment,
            outputs=resolved.outputs,
            unresolved_outputs=resolved.unresolved_outputs,
            skipped_resources=resolved.skipped_resources,
        )
        return self._stack

    @property
    def stack(self) -> DeployedStack:
        """The deployed stack (after :meth:`deploy`)."""
        if self._stack is None:
            raise LocalEngineError("deploy() first")
        return self._stack

    def _create_roles(self, resolved: ResolvedTemplate) -> None:
        iam = self.session().client("iam")
        created: set[str] = set()
        for role in resolved.roles:
            iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=role.assume_role_policy)
            created.add(role.arn)
        needed = [(spec.role_arn, spec.role_name) for spec in resolved.functions]
        needed += [(spec.role_arn, spec.role_name) for spec in resolved.state_machines]
        for arn, name in needed:
            if arn not in created:
                iam.create_role(RoleName=name, AssumeRolePolicyDocument=_ASSUME_ROLE_POLICY)
                created.add(arn)

    def _create_key(self, spec: KeySpec) -> None:
        """Create the key in moto under the id the template resolution chose (moto picks its own)."""
        created = self.client("kms").create_key(Policy=spec.policy, Description=spec.description)
        backend = kms_backends[self.account_id][self.region]
        key = backend.keys.pop(created["KeyMetadata"]["KeyId"])
        key.id = spec.key_id
        key.arn = spec.arn
        backend.keys[spec.key_id] = key

    def _create_function(self, spec: FunctionSpec) -> None:
        module_path = spec.handler.rpartition(".")[0]
        source = spec.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
        if not source.is_file():
            raise LocalEngineError(f"function {spec.logical_id}: handler file not found: {source}")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.write(source, arcname=source.relative_to(spec.code_dir).as_posix())
        arguments: dict[str, Any] = {
            "FunctionName": spec.name,
            "Runtime": spec.runtime,
            "Role": spec.role_arn,
            "Handler": spec.handler,
            "Code": {"ZipFile": archive.getvalue()},
            "Timeout": spec.timeout,
            "MemorySize": spec.memory_size,
            "Environment": {"Variables": dict(spec.environment)},
        }
        if spec.vpc_config:
            arguments["VpcConfig"] = spec.vpc_config
        self.session().client("lambda").create_function(**arguments)
        principal = principal_for(spec.logical_id, spec.role_arn, spec.name, spec.policies, self.account_id)
        self._principal_by_name[spec.logical_id] = principal
        self._registry.register(spec, principal)

    # -- executions ----------------------------------------------------------------------------

    def start_execution(self, input: Mapping[str, Any], name: str, state_machine: str | None = None) -> str:
        """Start an execution of the (named, by logical id) state machine; answer its ARN."""
        arn = self.stack.state_machine_arn(state_machine)
        response = self._sfn().start_execution(stateMachineArn=arn, name=name, input=json.dumps(dict(input)))
        execution_arn = str(response["executionArn"])
        self._executions.append(execution_arn)
        return execution_arn

    def wait_for_execution(self, execution_arn: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll ``DescribeExecution`` until the execution is no longer RUNNING (or the deadline)."""
        client = self._sfn()
        deadline = time.monotonic() + timeout_s
        while True:
            described: dict[str, Any] = dict(client.describe_execution(executionArn=execution_arn))
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout_s} s")
            time.sleep(_POLL_INTERVAL_S)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every event of the execution's history, oldest first."""
        paginator = self._sfn().get_paginator("get_execution_history")
        events: list[dict[str, Any]] = []
        for page in paginator.paginate(executionArn=execution_arn):
            events.extend(dict(event) for event in page["events"])
        return events

    # -- rehearsal controls --------------------------------------------------------------------

    # -- IAM -----------------------------------------------------------------------------------

    @property
    def iam_calls(self) -> list[EvaluatedCall]:
        """Every AWS call a handler or a state machine task made, as evaluated (oldest first)."""
        return self._iam_calls.snapshot()

    def clear_iam_calls(self) -> None:
        """Forget the recorded calls (e.g. between the runs of one engine)."""
        self._iam_calls.clear()

    def principal(self, logical_id: str) -> Principal:
        """The role (and its statements) of the template's function or state machine."""
        if logical_id not in self._principal_by_name:
            raise LocalEngineError(f"no function or state machine {logical_id!r} in the deployed template")
        return self._principal_by_name[logical_id]

    def evaluate_iam(
        self, logical_id: str, check: Check, statements: tuple[Statement, ...] | None = None
    ) -> Decision:
        """Evaluate ``check`` for that principal now (optionally with other identity statements)."""
        return decide(self.principal(logical_id), check, World(self.account_id, self.region), statements)

    @property
    def requested_waits(self) -> list[WaitRecord]:
        """Every Wait state and Retry backoff requested so far (none was slept)."""
        return self._waits.snapshot()

    @property
    def clock_advanced_seconds(self) -> float:
        """How far the workflow's wall clock has moved beyond real time (the waits it skipped)."""
        return self._clock.advanced_seconds

    def advance_clock(self, seconds: float) -> None:
        """Let ``seconds`` pass on the workflow's wall clock without a Wait (a soak between runs)."""
        self._clock.advance(seconds)

    def on_wait(self, listener: Callable[[WaitRecord], None]) -> None:
        """Call ``listener`` at each Wait state or Retry backoff, in the execution's thread: what a
        test makes happen while the workflow waits (clients writing during the bake)."""
        self._waits.listen(listener)

    def fail_at(self, state_name: str, k: int = 1, error: str = INJECTED_ERROR) -> None:
        """Make the k-th invocation of Task state ``state_name`` fail with ``error``.

        The default error is permanent (``RehearsalInjectedFailure``); pass a transient one
        (``TransientError``) to see Retry at work. Invocations are counted per execution and
        include Map iterations and retries.
        """
        tasks = set()
        for definition in self._definitions.values():
            tasks |= set(_task_state_names(definition))
        if not self._definitions:
            raise LocalEngineError("deploy() before fail_at(): the Task states come from the definition")
        if state_name not in tasks:
            raise LocalEngineError(f"{state_name!r} is not a Task state of the workflow: {sorted(tasks)}")
        self._injector.fail_at(state_name, k, error)

    @property
    def lambda_metrics(self) -> LambdaMetrics:
        """The functions' ``AWS/Lambda`` metrics: traffic to follow (``add_traffic``) or counts to
        write (``record``); see ``lambda_metrics``."""
        return self._lambda_metrics

    @property
    def sqs_polling(self) -> SqsEventSourcePolling:
        """The SQS event source mappings' polling: what each delivered or had throttled
        (``sqs_event_source``)."""
        return self._sqs_polling

    def event_source_mappings(self) -> list[dict[str, Any]]:
        """Every event source mapping as Lambda holds it now (UUID, function, source, state), read
        from the engine's backend: safe inside a Wait listener, where no caller's IAM applies."""
        self._require_running()
        backend = lambda_simple_backends[self.account_id][self.region]
        return sorted(
            (
                {
                    "uuid": mapping.uuid,
                    "functionArn": mapping.function_arn,
                    "eventSourceArn": mapping.event_source_arn,
                    "state": "Enabled" if mapping.enabled else "Disabled",
                }
                for mapping in backend.list_event_source_mappings("", "")
            ),
            key=lambda row: str(row["uuid"]),
        )

    @property
    def elasticache_metrics(self) -> ElastiCacheMetrics:
        """ElastiCache's ``CurrConnections``, sampled per watched node (``watch_node``)."""
        return self._elasticache_metrics

    @property
    def lambda_updates_applied_at(self) -> dict[str, float]:
        """When each function's latest configuration update took effect (wall clock; with
        ``lambda_update_seconds`` > 0): the data a cutover-window measurement needs."""
        return dict(self._update_latency.applied_at)

    def invocations(self, execution_arn: str, state_name: str) -> int:
        """How many times Task state ``state_name`` was invoked in that execution (retries included)."""
        return self._injector.invocation_count(execution_arn, state_name)

    def clear_failures(self) -> None:
        """Forget every :meth:`fail_at`: executions started from now on run without injected failures."""
        self._injector.clear()

    def register_sandbox(self, instance_id: str, sandbox: Sandbox) -> None:
        """Make SSM Run Command on ``instance_id`` run on ``sandbox``."""
        self._ssm.register(instance_id, sandbox)

    def record_reserved_cache_nodes(self, reservations: list[ReservedNodes]) -> None:
        """The account holds exactly these reserved cache nodes (``elasticache/reserved_nodes.py``)."""
        self._reserved_nodes.record(reservations)

    def record_instance_platform(self, instance_id: str, platform: Platform) -> None:
        """``instance_id``'s SSM agent reports ``platform`` (an account file's recorded OS), not the
        sandbox's own (``ssm/instance_information.py``)."""
        self._managed.record(instance_id, platform)

    @property
    def ssm_commands(self) -> list[SentCommand]:
        """Every ``SendCommand`` made so far, with its parameters."""
        with self._ssm.lock:
            return list(self._ssm.sent)

    def map_address(self, private_ip: str, port: int, target: tuple[str, int]) -> None:
        """Redirect connections to ``private_ip:port`` to the loopback ``target``."""
        self._routes.add(private_ip, port, target)

    def map_private_address(
        self, host: str, port: int, network: PrivateNetwork, inner_port: int, forwarder_port: int
    ) -> None:
        """Make ``host:port`` lead to 127.0.0.1:``inner_port`` inside the private ``network``: a
        connection is made there, from the current client's address (``acting_as_function``,
        ``acting_as_address``; 127.0.0.1 without one). ``forwarder_port``: the network's forwarder
        on this machine's loopback for that port (what a connection to it is made as too)."""
        self._routes.add(host, port, ("127.0.0.1", forwarder_port))
        self._routes.add_private(forwarder_port, network, inner_port)

    def acting_as_function(self, function_name: str) -> AbstractContextManager[None]:
        """Run a block as the account's client function ``function_name``: what a rehearsal's
        simulated client does there is what that function's own code would do (see
        :mod:`~redis_migration_ops.local_engine.lambda_.client_identity`); its connections to the
        rehearsal's ElastiCache leave from the function's Hyperplane interface
        (``lambda_/hyperplane_interfaces.py``)."""
        return acting_as_function(function_name)

    def acting_as_address(self, address: str) -> AbstractContextManager[None]:
        """Run a block as a client that is not a Lambda function: its connections to the rehearsal's
        ElastiCache leave from ``address`` (an instance's or an ECS task's interface, or an address
        no interface of the account has: ``rehearse --other-writer``); see
        :mod:`~redis_migration_ops.local_engine.ec2.client_addresses`."""
        return acting_as_address(address)

    def function_address(self, function_name: str) -> str | None:
        """The address a function's connections leave from: its Hyperplane interface's (None: the
        function is not attached to a VPC)."""
        self._require_running()
        return function_address(self.account_id, self.region, function_name)

    def _client_address(self) -> str | None:
        explicit = current_client_address()
        if explicit is not None:
            return explicit
        function = current_client_function()
        if function is None:
            return None
        address = function_address(self.account_id, self.region, function)
        if address is None:
            raise ConnectionRefusedError(
                f"local engine: {function} is not attached to a VPC (no VpcConfig, or subnets moto does "
                "not know): it could not reach ElastiCache"
            )
        return address

    def client_invocation(self, function_name: str) -> AbstractContextManager[None]:
        """One invocation of the client function ``function_name``, as Lambda admits it: refused with
        ``FunctionThrottled`` while its reserved concurrency is 0, otherwise run as that function and
        counted as running until the block ends (a Wait lasts until it has; see
        :mod:`~redis_migration_ops.local_engine.lambda_.running_invocations`)."""
        self._require_running()
        return self._invocations.invocation(function_name)

    @property
    def throttled_invocations(self) -> dict[str, int]:
        """Function -> client invocations refused at reserved concurrency 0 so far."""
        return dict(self._invocations.throttled)

    def _function_limits(self, function_name: str) -> FunctionLimits:
        lambda_ = self.client("lambda")
        reserved = lambda_.get_function_concurrency(FunctionName=function_name).get(
            "ReservedConcurrentExecutions"
        )
        # The reservation is read at every admission (the freeze changes it); the timeout once per
        # function (nothing in a rehearsal changes it, and each read costs the workflow's threads).
        timeout = self._function_timeouts.get(function_name)
        if timeout is None:
            timeout = int(lambda_.get_function_configuration(FunctionName=function_name).get("Timeout") or 3)
            self._function_timeouts[function_name] = timeout
        return FunctionLimits(reserved_concurrency=reserved, timeout_s=timeout)

    def _wait_idle(self, seconds: float) -> None:
        """What a Wait of ``seconds`` lets finish before the workflow goes on: a sandbox command, and
        the client invocations already running (their timeout permitting)."""
        self._ssm.wait_idle(seconds)
        self._invocations.wait_for_earlier(seconds)

    def trust_certificate_authority(self, bundle: Path) -> None:
        """Make TLS clients of this process trust the PEM ``bundle`` by default, as code in AWS
        trusts the authority that signs ElastiCache's certificates: ``SSL_CERT_FILE``, which
        OpenSSL's default verify paths (``ssl.create_default_context``) read, restored when the
        engine stops. The bundle should hold the system's authorities too (it replaces the file)."""
        self._require_running()
        self._set_environ({"SSL_CERT_FILE": str(bundle)})

    # -- ElastiCache ---------------------------------------------------------------------------

    def name_elasticache_endpoint(
        self, replication_group_id: str, address: str, reader: str | None = None, nodes: Sequence[str] = ()
    ) -> None:
        """Give the replication group the endpoint names a described account recorded (its primary,
        reader and nodes' endpoints: the names its clients hold); moto invents others
        (``elasticache_member_clusters``)."""
        self._require_running()
        name_endpoint(
            self.account_id,
            self.region,
            replication_group_id,
            address.lower(),
            reader=reader.lower() if reader else None,
            nodes=[node.lower() for node in nodes],
        )

    def publish_elasticache_metrics(  # noqa: PLR0917 - one stretch of use
        self,
        replication_group_id: str,
        start: datetime,
        end: datetime,
        connections: float,
        get_commands: float = 0.0,
        set_commands: float = 0.0,
        bytes_used: float | None = None,
    ) -> int:
        """Publish what ElastiCache would for each node of the group over ``start``..``end``: a datapoint a
        minute of ``connections`` clients (plus ElastiCache's own) and commands per minute, and
        ``bytes_used`` as ``BytesUsedForCache`` when given (``elasticache_metrics``). Answers the
        datapoints per node and metric."""
        self._require_running()
        group = self.client("elasticache").describe_replication_groups(
            ReplicationGroupId=replication_group_id
        )
        members = list(group["ReplicationGroups"][0].get("MemberClusters") or [])
        return publish_usage(
            self.account_id,
            self.region,
            members,
            start,
            end,
            connections,
            get_commands,
            set_commands,
            bytes_used,
        )

    @property
    def elasticache_operations(self) -> ElastiCacheOperations:
        """ElastiCache's operations in flight (snapshots, exports, deletions) and their clock."""
        return self._elasticache


_DATA_LOADER: Any = None
_DATA_LOADER_LOCK = threading.Lock()


def _shared_data_loader() -> Any:
    """botocore's model loader, one per process (it caches what it has parsed)."""
    global _DATA_LOADER  # noqa: PLW0603 - a lazily built, process-wide cache
    with _DATA_LOADER_LOCK:
        if _DATA_LOADER is None:
            _DATA_LOADER = botocore.loaders.create_loader()
        return _DATA_LOADER


def _task_state_names(definition: Mapping[str, Any]) -> Iterator[str]:
    for name, state in (definition.get("States") or {}).items():
        if state.get("Type") == "Task":
            yield name
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _task_state_names(state[key])
        for branch in state.get("Branches") or []:
            yield from _task_state_names(branch)
