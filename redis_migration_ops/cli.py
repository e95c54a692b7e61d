"""The `redis-migration` command for operators.

Exit codes scripts can rely on: 0 migrated (or the command did what it said), 1 anything
unexpected, 2 bad usage or input, 3 the migration failed and everything is as it was
before, 4 the rollback failed and something is left to do by hand.
"""

from __future__ import annotations

import atexit
import gc
import json
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from redis_migration_ops.account.describe import describe_account
from redis_migration_ops.account.description import AccountDescriptionError, load_account, save_account
from redis_migration_ops.audit.history import parse_json
from redis_migration_ops.audit.progress import DataProgress, execution_warnings
from redis_migration_ops.audit.render import plan_lines, render_markdown, render_table
from redis_migration_ops.audit.report import build_report
from redis_migration_ops.decommission import DecommissionInputError, decommission_input
from redis_migration_ops.local_engine.errors import LocalEngineError
from redis_migration_ops.local_engine.sandbox_host import SandboxError
from redis_migration_ops.operations import (
    MAX_EXECUTION_NAME,
    STATE_MACHINE_ARN_ENV,
    OperatorError,
    ProgressLines,
    StepFunctions,
    environment_of_state_machine,
    execution_name,
    exit_code_of,
    full_plan,
    honest_exit_code,
    make_session,
    record_reader,
    resolve_execution_arn,
    resolve_state_machine_arn,
    rollback_input,
    validated_input,
)
from redis_migration_ops.rehearsal.approval import APPROVAL_ANSWERED
from redis_migration_ops.rehearsal.decommission import rehearse_decommission
from redis_migration_ops.rehearsal.interruption import Interrupted, stop_on_signals
from redis_migration_ops.rehearsal.migration import (
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    POLL,
    FailPoint,
    RehearsalError,
    RehearsalOptions,
    rehearse,
)
from redis_migration_ops.rehearsal.workdir import WorkdirError

app = typer.Typer(
    name="redis-migration",
    help="Move Redis from ElastiCache to a self-hosted Redis 7 on EC2, as one reversible "
    "Step Functions workflow. Exit codes: 0 done, 1 unexpected, 2 bad usage, 3 failed and "
    "rolled back (nothing changed), 4 rollback failed (action needed).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Dynamic text (causes, names) is printed with markup and emoji off: an ARN's ":secret:" is not an emoji.
console = Console(stderr=True, highlight=False, emoji=False)
stdout = Console(highlight=False, emoji=False)


@app.callback()
def _group() -> None:
    """Keeps the subcommands (typer would otherwise collapse a one-command app)."""


def _progress_printer(quiet: bool) -> Any:
    """Print each state as the workflow enters it, each failure, and the copy's, the verification's
    and the freeze's progress, as it happens (a new execution starts a new progress)."""
    data = [DataProgress()]

    def progress(kind: str, event: dict[str, Any]) -> None:
        if quiet:
            return
        if kind == POLL:
            line = data[0].heartbeat(event["timestamp"])
            if line is not None:
                console.print(f"    [cyan]… {escape(line)}[/cyan]", soft_wrap=True)
            return
        if kind == "ExecutionStarted":
            data[0] = DataProgress()
        state(kind, event)
        if "id" not in event:
            return  # the rehearsal's own events (its answer to the approval gate) are not history
        for line in data[0](event):
            console.print(f"    [cyan]{escape(line)}[/cyan]", soft_wrap=True)

    def state(kind: str, event: dict[str, Any]) -> None:
        entered = event.get("stateEnteredEventDetails")
        if entered:
            console.print(f"  [bold]→[/bold] {entered['name']}")
            return
        if kind in {"TaskFailed", "LambdaFunctionFailed", "TaskTimedOut"}:
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            error = details.get("error", kind)
            console.print(
                f"    [red]✗ {escape(str(error))}[/red]: {escape(str(details.get('cause', ''))[:200])}"
            )
        elif kind == "ExecutionFailed":
            details = event.get("executionFailedEventDetails", {})
            console.print(f"  [red]■ execution failed: {details.get('error')}[/red]")
        elif kind == APPROVAL_ANSWERED:
            _print_approval(event["approvalAnsweredEventDetails"])
        elif kind == "ExecutionSucceeded":
            console.print("  [green]■ execution succeeded[/green]")

    return progress


def _print_approval(answered: dict[str, Any]) -> None:
    """The approval request, as its notification carries it, and how the rehearsal answered it."""
    request = answered.get("request") or {}
    functions = ", ".join(str(name) for name in request.get("functions") or [])
    count = request.get("functionCount")
    more = (
        f", ... {count} in all"
        if isinstance(count, int) and count > len(request.get("functions") or [])
        else ""
    )
    console.print(
        f"    approval requested: switch {count} function(s) ({escape(functions)}{more}) to "
        f"{escape(str(request.get('newRedis')))}, release {escape(str(request.get('release')))}",
        soft_wrap=True,
    )
    if answered.get("decision") == "approved":
        console.print(
            "    [green]approved by the rehearsal[/green] (the default; --reject rehearses a rejection). "
            "On AWS: redis-migration approve EXECUTION (or reject EXECUTION --reason ...)",
            soft_wrap=True,
        )
    else:
        console.print(
            "    [yellow]rejected by the rehearsal[/yellow] (--reject): it rolls back before any function "
            "is switched. On AWS: redis-migration reject EXECUTION --reason ...",
            soft_wrap=True,
        )


class DataCopyMode(StrEnum):
    none = "none"
    warm = "warm"
    consistent = "consistent"


@app.command(name="rehearse")
def rehearse_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    functions: Annotated[
        int | None,
        typer.Option(
            "--functions",
            min=1,
            max=2000,
            show_default="5",
            help="Client functions of the sample account, up to 2,000 (not with --account).",
        ),
    ] = None,
    account_file: Annotated[
        Path | None,
        typer.Option(
            "--account",
            metavar="FILE",
            help="Build this account (YAML or JSON, e.g. from `describe-account`) instead of the sample.",
        ),
    ] = None,
    inputs: Annotated[
        list[Path] | None,
        typer.Option(
            "--input",
            metavar="FILE",
            help="An execution input (JSON object, UTF-8); repeatable: each FILE is one run, in order, in "
            "the same local account. Default: one run of the sample input.",
        ),
    ] = None,
    fail_at: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-at",
            metavar="STATE[#K][@N]",
            help="Make the K-th invocation (default 1st) of Task state STATE fail, in run N (default: every "
            "run); repeatable. Rehearse the rollback (e.g. CutOverFunction#2) or a failing rollback "
            "(e.g. VerifyCutover and RestoreFunction). A point no run reaches ends the rehearsal with "
            "exit 2.",
        ),
    ] = None,
    write_keys: Annotated[
        int,
        typer.Option(
            "--write-keys",
            min=0,
            max=1_000_000,
            help="After each run that ends migrated, a client writes N keys (some with TTLs) to the "
            "self-hosted Redis, as the functions would.",
        ),
    ] = 0,
    fill_maxmemory: Annotated[
        bool,
        typer.Option(
            "--fill-maxmemory",
            help="After the last run, if it migrated: fill the self-hosted Redis to its maxmemory and "
            "save, beside the co-tenant (the sandbox's stand-in for Asterisk); the report's "
            "fillMaxmemory shows Redis's memory cgroup against its limit and the co-tenant's lateness.",
        ),
    ] = False,
    existing_redis: Annotated[
        int,
        typer.Option(
            "--existing-redis",
            min=0,
            max=1_000_000,
            help="The host starts with Debian's own Redis installed and running (its default config), "
            "holding N keys saved in its RDB: the migration must take it over without losing one.",
        ),
    ] = 0,
    seed_keys: Annotated[
        int,
        typer.Option(
            "--seed-keys",
            min=0,
            max=5_000_000,
            help="ElastiCache (a real TLS, token-protected redis-server standing in for it) starts with N "
            "keys of every type: strings, hashes, lists, sets, sorted sets, streams, HyperLogLogs, some "
            "with TTLs, binary names, a few multi-megabyte keys.",
        ),
    ] = 0,
    seed_commands: Annotated[
        Path | None,
        typer.Option(
            "--seed-commands",
            metavar="FILE",
            help="Fill ElastiCache by running FILE's Redis commands (redis-cli syntax, one per line).",
        ),
    ] = None,
    data_copy: Annotated[
        DataCopyMode | None,
        typer.Option(
            "--data-copy",
            help="The runs' dataCopy: none (start empty), warm (copy while clients write) or consistent "
            "(freeze the writers, copy, verify, cut over, unfreeze). Default: consistent when ElastiCache "
            "holds keys.",
        ),
    ] = None,
    bake_minutes: Annotated[
        int | None,
        typer.Option(
            "--bake-minutes",
            min=0,
            max=240,
            help="Bake N minutes after the cutover (bakeMinutes in every run's input that does not set "
            "it). The client functions get modelled traffic to compare (waits take no time here).",
        ),
    ] = None,
    bake_regression: Annotated[
        list[str] | None,
        typer.Option(
            "--bake-regression",
            metavar="FUNCTION",
            help="This client function fails once switched to the new Redis (repeatable): the bake must "
            "see it and roll back.",
        ),
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Where report.json and history.json go (default: a new temp dir). A workdir in use by a "
            "running rehearsal is refused; a stale one is cleaned first.",
        ),
    ] = None,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the rehearsal's Redis running afterwards.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    client_writes: Annotated[
        float | None,
        typer.Option(
            "--client-writes",
            metavar="RATE",
            min=0.0,
            max=50.0,
            show_default="2 when ElastiCache is seeded, else 0",
            help="Writes per second per client function, for the whole rehearsal (0: none): each "
            "function's writer connects to whatever its configuration names at that moment, fails while "
            "it is frozen, and records every acknowledged write in DIR/ledger.jsonl; the report's "
            "`ledger` says how many were lost.",
        ),
    ] = None,
    other_writer: Annotated[
        bool,
        typer.Option(
            "--other-writer",
            help="Also a client the run does not switch (an ECS task, a cron job), writing to ElastiCache "
            "throughout; its writes are in the ledger too.",
        ),
    ] = False,
    decommission: Annotated[
        bool,
        typer.Option(
            "--decommission",
            help="Then retire the local ElastiCache: a decommission run with the soak at zero, approved, "
            "exporting the final snapshot (--fail-at reaches its states too).",
        ),
    ] = False,
    approve: Annotated[
        bool,
        typer.Option(
            "--approve",
            help='Approve the approval gate of a run that asks for one ("requireApproval": true), as '
            "`redis-migration approve` would. The default.",
        ),
    ] = False,
    reject: Annotated[
        bool,
        typer.Option(
            "--reject",
            help="Reject it instead, as `redis-migration reject` would: the run rolls back before any "
            "function is switched (ApprovalRejected, exit 3).",
        ),
    ] = False,
) -> None:
    """Rehearse a whole migration locally: no AWS account, the real workflow, a real Redis.

    Builds a local account (the sample: a VPC, the instance as a sandbox host, N client
    functions on ElastiCache, functions that do not use Redis; or the one in --account FILE),
    runs each execution input through the local engine, and writes DIR/report.json (one entry
    per run under `runs`, with the functions, rules and host before and after), DIR/history.json
    and DIR/function-logs.jsonl. With writers (--client-writes, on when ElastiCache is seeded), every
    acknowledged write goes to DIR/ledger.jsonl and the report's `ledger` says how many were lost.
    Exit 0 only when what the run claims holds: every function that used ElastiCache switched, and
    no acknowledged write lost. Needs root (the sandbox uses Linux namespaces) and redis-server.
    """
    if approve and reject:
        console.print("[red]error:[/red] --approve and --reject: choose one", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE)
    # The interpreter's last garbage collection walks the local engine's whole heap (moto's backends,
    # botocore's models): 7-15 s on 2 busy cores after everything has stopped. Nothing needs
    # collecting when the process ends, so the objects are frozen out of it at exit.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    if account_file is not None and functions is not None:
        console.print(
            "[red]error:[/red] --functions is for the sample account; --account FILE lists its own",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_USAGE)
    if workdir is not None and workdir.exists() and not workdir.is_dir():
        console.print(
            f"[red]error:[/red] --workdir {escape(str(workdir))}: exists and is not a directory",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_USAGE)
    try:
        points = [FailPoint.parse(text) for text in fail_at or []]
        account = load_account(account_file) if account_file is not None else None
        documents = [_read_input(path) for path in inputs or []]
    except (ValueError, AccountDescriptionError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    except OperatorError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    if bake_minutes is not None:
        documents = [{"bakeMinutes": bake_minutes, **document} for document in documents or [{}]]
    options = RehearsalOptions(
        functions=functions or 5,
        fail_at=points,
        workdir=workdir,
        keep_running=keep_running,
        account=account,
        inputs=documents,
        write_keys=write_keys,
        fill_maxmemory=fill_maxmemory,
        existing_redis=existing_redis,
        seed_keys=seed_keys,
        seed_commands=seed_commands,
        data_copy=data_copy.value if data_copy is not None else None,
        bake_regression=list(bake_regression or []),
        approval="reject" if reject else "approve",
        client_writes=client_writes,
        other_writer=other_writer,
    )
    what = (
        f"the account in {account_file} ({len(account.redis_clients())} client function(s))"
        if account is not None
        else f"{options.functions} client function(s)"
    )
    runs = max(1, len(documents))
    console.print(
        f"[bold]Rehearsing {runs} run(s)[/bold] of {escape(what)}"
        + (f", failing at {', '.join(str(p) for p in points)}" if points else "")
        + (f", {existing_redis} keys in an existing Redis" if existing_redis else "")
        + (f", {seed_keys} keys in ElastiCache" if seed_keys else "")
        + (f", dataCopy {data_copy.value}" if data_copy is not None else "")
        + _writers_phrase(options)
        + (", then its decommission" if decommission else "")
        + (
            f", {'rejecting' if reject else 'approving'} its approval gate"
            + ("" if reject else " (--reject to rehearse a rejection)")
            if any(document.get("requireApproval") is True for document in documents)
            else ""
        )
    )
    try:
        run = rehearse_decommission if decommission else rehearse
        with stop_on_signals():
            result = run(options, _progress_printer(quiet=False))
    except Interrupted as stopped:
        console.print(
            f"[red]interrupted ({stopped}):[/red] the rehearsal stopped; its sandbox host, ElastiCache "
            "stand-in and servers were stopped; no report was written",
            soft_wrap=True,
        )
        raise typer.Exit(stopped.exit_code) from None
    except (RehearsalError, LocalEngineError, SandboxError) as error:
        console.print(f"[red]cannot rehearse:[/red] {escape(str(error))}")
        raise typer.Exit(EXIT_UNEXPECTED) from None
    except WorkdirError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    except ValueError as error:  # e.g. --fail-at names a state that is not a Task state
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(EXIT_USAGE) from None
    report = result.report
    if as_json:
        stdout.print_json(json.dumps(report, default=str))
    _print_summary(report, result.workdir)
    if decommission:
        _print_decommission_summary(report.get("decommission"))
    raise typer.Exit(result.exit_code)


def _writers_phrase(options: RehearsalOptions) -> str:
    settings = options.writer_settings()
    if settings is None:
        return ""
    writers = []
    if settings.function_writers:
        writers.append(f"a writer per client function at {settings.rate:g}/s")
    if settings.other_writer:
        writers.append("a writer the run does not switch")
    return ", " + " and ".join(writers)


def _print_ledger(ledger: dict[str, Any] | None) -> None:
    if ledger is None:
        return
    colour = "green" if not ledger["lost"] else "red"
    counted = f"ledger: {ledger['acknowledged']} acknowledged write(s), {ledger['lost']} lost"
    console.print(
        f"  [{colour}]{counted}[/{colour}]"
        f", {ledger['namedInToDo']} named in what is left to do; {ledger['throttled']} throttled while "
        f"frozen, {ledger['failed']} failed (not acknowledged): {escape(str(ledger['file']))}",
        soft_wrap=True,
    )
    for key in ledger["lostKeys"]:
        console.print(f"    [red]lost:[/red] {escape(str(key))}", soft_wrap=True)


def _print_decommission_summary(report: dict[str, Any] | None) -> None:
    if report is None:
        console.print("[yellow]decommission: not run (the migration did not succeed)[/yellow]")
        return
    colour = {0: "green", 3: "yellow"}.get(report["exitCode"], "red")
    console.print(
        f"\n[bold {colour}]decommission {report['status']}: {escape(report['outcome'])}[/bold {colour}]"
    )
    if report.get("cause"):
        console.print(f"  cause: {escape(str(report['cause'])[:1500])}", soft_wrap=True)
    after = report["elastiCache"]["after"]
    console.print(f"  planned: {escape('; '.join(report.get('planned') or []))}", soft_wrap=True)
    console.print(
        f"  now: replication group {after['replication_group'] or 'gone'}; subnet group "
        f"{'there' if after['subnet_group'] else 'gone'}; parameter group "
        f"{'there' if after['parameter_group'] else 'gone (or AWS default, kept)'}; security groups "
        f"{after['security_groups']}; secret scheduled for deletion {after['secret_scheduled_for_deletion']}",
        soft_wrap=True,
    )
    console.print(f"  final snapshot: {report.get('finalSnapshot')} {after['snapshots']}", soft_wrap=True)
    for path in after.get("exported_files") or []:
        console.print(f"  exported: {path}", soft_wrap=True)
    console.print(f"  monthly saving: {escape(str(report.get('saving')))}", soft_wrap=True)


def _print_summary(report: dict[str, Any], workdir: Path) -> None:
    runs = report.get("runs") or []
    if len(runs) > 1:
        for run in runs:
            host = run.get("hostAfter") or {}
            console.print(
                f"  run {run['run']}: {run['status']} (exit {run['exitCode']}): "
                f"{escape(str(run['outcome']))}; "
                f"host config {str((host.get('config') or {}).get('sha256'))[:12]}, "
                f"keys {((host.get('redis') or {}).get('dbsize'))}"
            )
    colour = {0: "green", 3: "yellow", 4: "red"}.get(report["exitCode"], "red")
    console.print(f"\n[bold {colour}]{report['status']}: {escape(str(report['outcome']))}[/bold {colour}]")
    for warning in report.get("warnings") or []:
        console.print(f"  [yellow]warning:[/yellow] {escape(str(warning))}", soft_wrap=True)
    _print_ledger(report.get("ledger"))
    if report["exitCode"] != 0:
        for line in report.get("differences") or []:
            console.print(f"  differs from before the run: {escape(str(line))[:300]}", soft_wrap=True)
    data = report.get("data") or {}
    if data.get("mode") and data.get("mode") != "none":
        console.print(
            f"  data ({data['mode']}): {data.get('copied')} of {data.get('sourceKeys')} keys copied, "
            f"{data.get('verified')} verified, {data.get('missing')} missing, "
            f"{data.get('mismatched')} mismatched; freeze {data.get('freezeSeconds')} s"
        )
    if report.get("error"):
        console.print(f"  error: {escape(str(report['error']))}")
        console.print(f"  cause: {escape(str(report.get('cause'))[:600])}")
    clients = report["functions"]["clients"]
    switched = sum(1 for f in clients.values() if f["before"] != f["after"])
    untouched = sum(1 for f in report["functions"]["others"].values() if f["before"] == f["after"])
    redis = report["redis"]
    console.print(
        f"  functions switched: {switched}/{len(clients)}; other functions untouched: "
        f"{untouched}/{len(report['functions']['others'])}"
    )
    on_cache = report.get("clientsOnElastiCache") or []
    if on_cache and report.get("status") == "SUCCEEDED":
        console.print(f"  still using ElastiCache: {escape(', '.join(on_cache[:20]))}", soft_wrap=True)
    expired = ((data.get("source") or {}).get("expired")) or {}
    if any(expired.values()):
        console.print(
            "  keys whose TTL ran out during the run (not differences): "
            + ", ".join(f"{where} {count}" for where, count in expired.items()),
            soft_wrap=True,
        )
    console.print(
        f"  redis: {redis.get('server')} {redis.get('version')} at {redis['host']}:{redis['port']} "
        f"(the sandbox host's address, reached over loopback; pid {redis.get('pid')}, "
        f"probe p50 {redis.get('latencyMsP50')} ms)"
    )
    console.print(
        f"  transitions: {report['transitions']}; requested waits: {report['requestedWaitSeconds']} s; "
        f"wall time: {report['timings']['totalSeconds']} s"
    )
    console.print(f"  report: {workdir / 'report.json'}\n  history: {workdir / 'history.json'}")
    if report.get("keptRunning"):
        console.print(
            "  Redis is still running in its sandbox (for an hour at most):\n"
            f"    {redis['connectAfterwards']} PING\n"
            "  (it answers NOAUTH: the rehearsal's password lived only in the in-process Secrets Manager)"
        )


@app.command(name="describe-account")
def describe_account_command(
    output: Annotated[
        Path,
        typer.Option("--output", metavar="FILE", help="Where to write it (.yaml/.yml: YAML; else JSON)."),
    ],
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: AWS_REGION or your profile's).")
    ] = None,
    elasticache_endpoint: Annotated[
        str | None,
        typer.Option(
            "--elasticache-endpoint",
            help="The endpoint the functions use (default: the one most of them name).",
        ),
    ] = None,
    instance_id: Annotated[
        str | None,
        typer.Option(
            "--instance-id", help="The instance for Redis (default: the only one in the clients' VPC)."
        ),
    ] = None,
) -> None:
    """Describe a real account for `rehearse --account FILE`, with read-only calls.

    Writes the VPC (subnets, route tables, NAT gateways, endpoints), the security groups, the instance,
    the ElastiCache source, the secrets the functions name (described, never read), and every Lambda
    function with its versions, aliases, tags, KMS key and reserved concurrency. The values of
    secret-like variables (PASSWORD, TOKEN, SECRET, KEY ...; not *_ARN) are replaced by "<redacted>".
    """
    with _operator_errors():
        session = make_session(region)
        description, summary = describe_account(
            session, elasticache_endpoint=elasticache_endpoint, instance_id=instance_id
        )
        try:
            save_account(description, output)
        except OSError as error:
            raise OperatorError(f"cannot write {output}: {error.strerror}") from None
    console.print(
        f"described {summary.functions} function(s) in {description.region}, "
        f"{len(summary.clients)} using {escape(description.elasticache.endpoint)}; "
        f"{len(summary.redacted)} value(s) redacted; "
        f"{len(summary.unreadable)} environment(s) not readable (KMS)",
        soft_wrap=True,
    )
    for note in summary.notes:
        console.print(f"  note: {escape(note)}", soft_wrap=True)
    written = escape(str(output))
    console.print(f"wrote {written}; rehearse it with: redis-migration rehearse --account {written}")


# ---------------------------------------------------------------------------------------------
# Operating a deployed workflow: plan, start, watch, approve, reject, history, rollback.
# The logic is in operations.py (Step Functions) and audit/ (the report); these are the words.

StateMachineArnOption = Annotated[
    str | None,
    typer.Option(
        "--state-machine-arn",
        envvar=STATE_MACHINE_ARN_ENV,
        help=f"The migration state machine (or set {STATE_MACHINE_ARN_ENV}, or use --stack-name).",
    ),
]
StackNameOption = Annotated[
    str | None,
    typer.Option("--stack-name", help="Read the state machine from this stack's StateMachineArn output."),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region", help="AWS region (default: the ARN's region, else AWS_REGION or your profile's)."
    ),
]
ExecutionArgument = Annotated[
    str,
    typer.Argument(metavar="EXECUTION", help="Execution ARN, or execution name (with the state machine)."),
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=1.0, help="Stop following after this many seconds (the run goes on)."),
]
IntervalOption = Annotated[float, typer.Option("--interval", min=0.05, help="Seconds between two polls.")]
InputOption = Annotated[
    Path | None,
    typer.Option(
        "--input", help="Execution input as a JSON file ('-' for stdin); the flags below override it."
    ),
]
EnvironmentOption = Annotated[
    str | None, typer.Option("--environment", help="Environment (default: the stack's).")
]
ReleaseOption = Annotated[str | None, typer.Option("--release", help="Release this migration belongs to.")]
FunctionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--function", help="A function to switch (repeatable; default: discover ElastiCache users)."
    ),
]
RemoveKeyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--remove-key", help="An old variable to remove at cutover, e.g. an auth-token ARN (repeatable)."
    ),
]


@contextmanager
def _operator_errors() -> Iterator[None]:
    """One clear line on stderr and the documented exit code, never a traceback."""
    try:
        yield
    except OperatorError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        console.print(
            "stopped following; the execution goes on (watch it again with `redis-migration watch`)"
        )
        raise typer.Exit(130) from None


def _connect(
    region: str | None, state_machine_arn: str | None, stack_name: str | None, *, execution: str | None = None
) -> tuple[StepFunctions, str | None]:
    """The Step Functions session and the state machine ARN (None when an execution ARN is enough)."""
    hint = execution if execution and execution.startswith("arn:") else None
    if execution is not None and (hint or not (state_machine_arn or stack_name)):
        # What was typed is checked before any session exists: a typo is a typo in any region.
        resolve_execution_arn(execution, state_machine_arn)
    session = make_session(region, hint, state_machine_arn)
    needs_machine = execution is None or hint is None
    machine = resolve_state_machine_arn(session, state_machine_arn, stack_name) if needs_machine else None
    return StepFunctions(session), machine


def _read_input(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        document = json.loads(text)
    except OSError as error:
        raise OperatorError(f"cannot read --input {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise OperatorError(
            f"--input {path} is not UTF-8 text (saved as UTF-16? re-save it as UTF-8)"
        ) from None
    except json.JSONDecodeError as error:
        raise OperatorError(f"--input {path} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise OperatorError(f"--input {path} must hold a JSON object (the execution input)")
    return document


def _execution_input(
    path: Path | None,
    environment: str | None,
    release: str | None,
    functions: list[str] | None,
    remove_keys: list[str] | None,
    **flags: bool,
) -> dict[str, Any]:
    raw = _read_input(path)
    given: dict[str, Any] = {
        "environment": environment,
        "release": release,
        "functions": functions or None,
        "removeKeys": remove_keys or None,
    }
    raw.update({key: value for key, value in given.items() if value is not None})
    raw.update({key: True for key, value in flags.items() if value})
    return validated_input(raw)


def _follow(sfn: StepFunctions, execution_arn: str, timeout: float, interval: float) -> int:
    """Print each state as it happens, then the outcome; answer the execution's exit code."""
    name = execution_arn.rsplit(":", 1)[-1]
    lines = ProgressLines(name)
    sfn.describe(execution_arn)  # a wrong ARN or missing credentials fail here, before any output
    console.print(f"following {name}")

    def show(event: dict[str, Any]) -> None:
        line = lines(event)
        if line is not None:
            console.print(escape(line), soft_wrap=True)

    def heartbeat() -> None:
        line = lines.tick()
        if line is not None:
            console.print(escape(line), soft_wrap=True)

    described = sfn.follow(execution_arn, show, timeout_s=timeout, interval_s=interval, on_poll=heartbeat)
    history = sfn.history(execution_arn)
    code, outcome = honest_exit_code(sfn.session, described, history)
    console.print(f"{described['status']} (exit {code}): {escape(outcome)}", soft_wrap=True)
    for warning in execution_warnings(described, history):
        console.print(f"  [yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    if described.get("error"):
        console.print(
            f"  error: {escape(str(described['error']))}: {escape(str(described.get('cause')))}",
            soft_wrap=True,
        )
    return code


@app.command(name="plan")
def plan_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    input_path: InputOption = None,
    environment: EnvironmentOption = None,
    release: ReleaseOption = None,
    function: FunctionOption = None,
    remove_key: RemoveKeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    timeout: TimeoutOption = 600.0,
    interval: IntervalOption = 2.0,
    state_machine_arn: StateMachineArnOption = None,
    stack_name: StackNameOption = None,
    region: RegionOption = None,
) -> None:
    """Dry run: show what a migration would change (functions, values, ingress, install). Changes nothing.

    Starts the workflow with dryRun: it validates the input, checks the preconditions and stops with the plan.
    """
    with _operator_errors():
        execution_input = {
            **_execution_input(input_path, environment, release, function, remove_key),
            "dryRun": True,
        }
        sfn, machine = _connect(region, state_machine_arn, stack_name)
        assert machine is not None  # a start always needs the state machine
        # A dry run changes nothing, so two of them may run at once: a random part keeps two plans
        # started in the same second from colliding (ExecutionAlreadyExists).
        name = execution_name(
            "plan",
            execution_input.get("environment") or environment_of_state_machine(machine),
            release,
            secrets.token_hex(3),
        )
        arn = sfn.start(machine, name, execution_input)
        console.print(f"dry run {name} started; waiting for the plan")
        described = sfn.follow(arn, lambda _event: None, timeout_s=timeout, interval_s=interval)
        output = parse_json(described.get("output"))
        if described["status"] != "SUCCEEDED" or not isinstance(output, dict) or "plan" not in output:
            error = f"{described.get('error')}: {described.get('cause')}"
            raise OperatorError(
                f"the dry run {name} ended {described['status']}: {error}", exit_code_of(described)
            )
        # The clients of every ElastiCache node, as the run would treat them (CheckElastiCacheClientsBefore).
        plan = {**full_plan(sfn.session, output["plan"]), "clients": output.get("clients")}
        if as_json:
            typer.echo(json.dumps(plan, indent=2))
        else:
            typer.echo("\n".join(plan_lines(plan, name)))


@app.command(name="start")
def start_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    input_path: InputOption = None,
    environment: EnvironmentOption = None,
    release: ReleaseOption = None,
    function: FunctionOption = None,
    remove_key: RemoveKeyOption = None,
    require_approval: Annotated[
        bool, typer.Option("--require-approval", help="Pause before the cutover until `approve`.")
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="Execution name (default: environment-release-UTC).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the execution (like `watch`) and exit with its status.")
    ] = False,
    timeout: TimeoutOption = 3600.0,
    interval: IntervalOption = 2.0,
    state_machine_arn: StateMachineArnOption = None,
    stack_name: StackNameOption = None,
    region: RegionOption = None,
) -> None:
    """Start a migration. Prints the execution ARN on stdout; with --wait, follows it to the end.

    The input is checked here with the workflow's own model first: a bad field is named and nothing
    starts (exit 2).
    """
    with _operator_errors():
        execution_input = _execution_input(
            input_path, environment, release, function, remove_key, requireApproval=require_approval
        )
        sfn, machine = _connect(region, state_machine_arn, stack_name)
        assert machine is not None  # a start always needs the state machine
        chosen = name or execution_name(
            execution_input.get("environment") or environment_of_state_machine(machine),
            execution_input.get("release"),
        )
        arn = sfn.start(machine, chosen, execution_input)
        typer.echo(arn)
        console.print(f"started {chosen}")
        if wait:
            raise typer.Exit(_follow(sfn, arn, timeout, interval))


@app.command(name="watch")
def watch_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    execution: ExecutionArgument,
    timeout: TimeoutOption = 3600.0,
    interval: IntervalOption = 2.0,
    state_machine_arn: StateMachineArnOption = None,
    stack_name: StackNameOption = None,
    region: RegionOption = None,
) -> None:
    """Follow an execution: each state as it is entered, each failure, then the outcome.

    Exits with the execution's status: 0 succeeded, 3 failed and rolled back, 4 rollback failed,
    1 aborted or timed out.
    """
    with _operator_errors():
        sfn, machine = _connect(region, state_machine_arn, stack_name, execution=execution)
        raise typer.Exit(_follow(sfn, resolve_execution_arn(execution, machine), timeout, interval))


@app.command(name="approve")
def approve_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    execution: ExecutionArgument,
    comment: Annotated[str | None, typer.Option("--comment", help="Recorded with the approval.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Then follow the execution to the end.")] = False,
    timeout: TimeoutOption = 3600.0,
    interval: IntervalOption = 2.0,
    state_machine_arn: StateMachineArnOption = None,
    stack_name: StackNameOption = None,
    region: RegionOption = None,
) -> None:
    """Approve the cutover of an execution waiting at WaitForApproval (who and when are recorded)."""
    with _operator_errors():
        sfn, machine = _connect(region, state_machine_arn, stack_name, execution=execution)
        arn = resolve_execution_arn(execution, machine)
        answer = sfn.approve(arn, comment)
        console.print(f"approved by {escape(answer['by'])}: the cutover goes on")
        if wait:
            raise typer.Exit(_follow(sfn, arn, timeout, interval))


@app.command(name="reject")
def reject_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    execution: ExecutionArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded as the cause of ApprovalRejected).")],
    wait: Annotated[bool, typer.Option("--wait", help="Then follow the rollback to the end.")] = False,
    timeout: TimeoutOption = 3600.0,
    interval: IntervalOption = 2.0,
    state_machine_arn: StateMachineArnOption = None,
    stack_name: StackNameOption = None,
    region: RegionOption = None,
) -> None:
    """Reject the cutover: nothing was switched yet; the run rolls back and fails with ApprovalRejected."""
    with _operator_errors():
        sfn, machine = _connect(region, state_machine_arn, stack_name, execution=execution)
        arn = resolve_execution_arn(execution, machine)
        answer = sfn.reject(arn, reason)
        console.print(f"rejected by {escape(answer['by'])}: the run rolls back (no function was switched)")
        if wait:
            raise typer.Exit(_follow(sfn, arn, timeout, interval))


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@app.command(name="history")
def history_command(
    execution: ExecutionArgument,
    output_format: Annotated[
        ReportFormat, typer.Option("--format", help="table, json or markdown.")
    ] = ReportFormat.table,
    state_machine_arn: StateMachineArnOption = None,
    stack_name: StackNameOption = None,
    region: RegionOption = None,
) -> None:
    """The audit report of an execution: trigger, input, states, functions changed, errors, rollback."""
    with _operator_errors():
        sfn, machine = _connect(region, state_machine_arn, stack_name, execution=execution)
        arn = resolve_execution_arn(execution, machine)
        described = sfn.describe(arn)
        history = sfn.history(arn)
        code, outcome = honest_exit_code(sfn.session, described, history)
        report = build_report(
            described, history, exit_code=code, outcome=outcome, records=record_reader(sfn.session)
        )
        if output_format is ReportFormat.json:
            typer.echo(report.to_json())
        elif output_format is ReportFormat.markdown:
            typer.echo(render_markdown(report), nl=False)
        else:
            render_table(report, stdout)


@app.command(name="rollback")
def rollback_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    execution: ExecutionArgument,
    name: Annotated[
        str | None, typer.Option("--name", help="Execution name (default: rollback-<execution>).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the rollback and exit with its status.")
    ] = False,
    timeout: TimeoutOption = 3600.0,
    interval: IntervalOption = 2.0,
    state_machine_arn: StateMachineArnOption = None,
    stack_name: StackNameOption = None,
    region: RegionOption = None,
) -> None:
    """Go back to ElastiCache after a migration that succeeded (e.g. after the 24-48 h soak).

    EXECUTION names a SUCCEEDED migration of this stack. The workflow reads the records itself (from Step
    Functions and the records bucket, never from the input): every function a migration of this stack switched
    gets its ElastiCache values back where it still holds the values written; one changed since is named, not
    overwritten; the Redis rules go once no function needs them; the secret and the Redis stay.
    """
    with _operator_errors():
        sfn, machine = _connect(region, state_machine_arn, stack_name, execution=execution)
        arn = resolve_execution_arn(execution, machine)
        rollback = rollback_input(sfn.describe(arn))
        original = arn.rsplit(":", 1)[-1]
        # The default name is derived from the migration's, so a second rollback of it is refused
        # by Step Functions (ExecutionAlreadyExists) instead of running twice.
        chosen = name or f"rollback-{original}"[:MAX_EXECUTION_NAME]
        rollback_machine = machine or arn.replace(":execution:", ":stateMachine:", 1).rsplit(":", 1)[0]
        started = sfn.start(rollback_machine, chosen, rollback)
        typer.echo(started)
        console.print(f"started {chosen}: rollback of {original}")
        if wait:
            raise typer.Exit(_follow(sfn, started, timeout, interval))


@app.command(name="decommission")
def decommission_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    execution: ExecutionArgument,
    soak_hours: Annotated[
        int | None,
        typer.Option(
            "--soak-hours",
            min=0,
            max=24 * 365,
            help="How long ago the migration must have succeeded (default 48).",
        ),
    ] = None,
    export_bucket: Annotated[
        str | None,
        typer.Option(
            "--export-bucket",
            help="Also export the final snapshot there (the stack's SnapshotExportBucketName).",
        ),
    ] = None,
    managed_by_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--managed-by-tag",
            metavar="KEY[=VALUE]",
            help="A tag meaning an infrastructure-as-code tool owns a resource (repeatable).",
        ),
    ] = None,
    no_approval: Annotated[
        bool, typer.Option("--no-approval", help="Delete without waiting for `approve` (default: wait).")
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="Execution name (default: decommission-<execution>-<UTC>).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the decommission and exit with its status.")
    ] = False,
    timeout: TimeoutOption = 7200.0,
    interval: IntervalOption = 5.0,
    state_machine_arn: StateMachineArnOption = None,
    stack_name: StackNameOption = None,
    region: RegionOption = None,
) -> None:
    """Retire ElastiCache after the soak: final snapshot, then the replication group, its subnet group, custom
    parameter group and security groups; the AUTH token's secret is scheduled for deletion (30-day window).

    EXECUTION names the migration that succeeded. Nothing is changed unless the migration succeeded at least
    --soak-hours ago, no function names ElastiCache, its metrics and CLIENT LIST show no client, and no
    infrastructure-as-code tool owns it; every reason is reported at once. Then it waits for `approve`
    (the request lists what goes, the snapshot and the monthly saving). Exit codes: 0 done, 3 refused or
    failed with nothing deleted, 4 DecommissionIncomplete (re-run it to finish). The way back:
    docs/decommission.md.
    """
    with _operator_errors():
        sfn, machine = _connect(region, state_machine_arn, stack_name, execution=execution)
        arn = resolve_execution_arn(execution, machine)
        try:
            execution_input = decommission_input(
                sfn.describe(arn),
                soak_hours=soak_hours,
                export_bucket=export_bucket,
                managed_by_tags=managed_by_tag,
                require_approval=not no_approval,
            )
        except DecommissionInputError as error:
            raise OperatorError(str(error)) from None
        original = arn.rsplit(":", 1)[-1]
        chosen = name or execution_name("decommission", original)
        decommission_machine = machine or arn.replace(":execution:", ":stateMachine:", 1).rsplit(":", 1)[0]
        started = sfn.start(decommission_machine, chosen, execution_input)
        typer.echo(started)
        console.print(f"started {chosen}: decommission of the ElastiCache {original} moved away from")
        if not no_approval:
            console.print(
                f"  it waits for approval: redis-migration approve {chosen} (or reject ... --reason)"
            )
        if wait:
            code = _follow(sfn, started, timeout, interval)
            output = parse_json(sfn.describe(started).get("output"))
            if isinstance(output, dict) and output.get("outcome") == "decommissioned":
                console.print(f"  monthly saving: {escape(str(output.get('savingSummary')))}", soft_wrap=True)
                console.print(
                    f"  final snapshot: {escape(str((output.get('finalSnapshot') or {}).get('name')))}"
                )
                console.print("  the way back (docs/decommission.md):")
                for command in output.get("restoreCommands") or []:
                    stdout.print(escape(command), soft_wrap=True)
            raise typer.Exit(code)


def main() -> None:
    """Entry point for `python -m redis_migration_ops`."""
    app()
