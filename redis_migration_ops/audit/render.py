"""Showing an audit report (terminal tables, Markdown) and a dry run's plan."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from redis_migration_ops.audit.report import AuditReport, ValueChange, function_changes, template_guidance


def _show(value: str | None) -> str:
    return "(absent)" if value is None else value


def plan_lines(plan: Mapping[str, Any], execution_name: str | None = None) -> list[str]:
    """The plan of a dry run as an operator reads it: what would change, and nothing else."""
    request = plan.get("request") or {}
    instance = plan.get("instance") or {}
    ingress = plan.get("ingress") or {}
    secret_arn = plan.get("secretArn")
    lines = [
        f"Plan for {request.get('projectName')} {request.get('environment')}"
        f" (release {request.get('release') or '-'}):",
        "",
        f"Functions that would change ({plan.get('functionCount', len(plan.get('functions') or []))}):",
    ]
    for name, changes in function_changes(plan).items():
        lines.append(f"  {name}")
        # variable (the form that named the cache): old → new
        for c in changes:
            form = f" ({c.form})" if c.form else ""
            lines.append(f"    {c.key}{form}: {_show(c.before)} → {_show(c.after)}")
        if not changes:
            lines.append("    (already on the new values: no change)")
    guidance = template_guidance(plan, secret_arn=secret_arn)
    if guidance:
        lines += ["", *guidance]
    clients = plan.get("clients")
    if isinstance(clients, dict) and "lines" in clients:
        lines += ["", f"ElastiCache's clients (CLIENT LIST of every node): {clients.get('clients')}"]
        lines += [f"  {line}" for line in clients.get("lines") or []]
        if clients.get("warnings"):
            lines += ["  Not switched by this run (their writes stay on ElastiCache):"]
            lines += [f"    {line}" for line in clients["warnings"]]
    elif isinstance(clients, dict) and clients.get("error"):
        lines += ["", f"ElastiCache's clients could not be listed: {clients['error']}"]
    lines += [
        "",
        f"Ingress: allow tcp {ingress.get('port')} to {ingress.get('groupId')} from "
        f"{', '.join(ingress.get('sourceGroupIds') or []) or '(none)'}",
        f"  rule description: {ingress.get('ruleDescription')}",
        "",
        f"Install: Redis 7 on {instance.get('instanceId')} ({instance.get('privateIp')},"
        f" {instance.get('platform')},"
        f" VPC {instance.get('vpcId')} {instance.get('vpcCidr')})",
        f"  port {request.get('redisPort')}, maxmemory {request.get('maxmemory')}"
        f" {request.get('maxmemoryPolicy')}, bind all interfaces: "
        + ("yes" if request.get("bindAllInterfaces") else "no (private IP and loopback)"),
        f"Password secret: {plan.get('secretName')} "
        + (f"(exists: {secret_arn}, reused)" if secret_arn else "(new, created by the migration)"),
        f"Approval before the cutover: {'required' if request.get('requireApproval') else 'not required'}",
        "",
        "Nothing was changed" + (f" (dry run {execution_name})." if execution_name else "."),
    ]
    return lines


def _md(value: Any) -> str:
    """A table cell: pipes escaped, newlines flattened."""
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _after_cutover_markdown(report: AuditReport) -> list[str]:
    """## Data, ## Bake and ## Host services: the numbers as the steps reported them."""
    record = report.after_cutover
    if record is None:
        return []
    out: list[str] = []
    data = record.data or {}
    if data.get("mode") not in (None, "none") or record.copy_back:
        out += ["", "## Data", ""]
        out += [f"- {key}: {_md(value)}" for key, value in data.items() if key not in ("problems", "verify")]
        out += [f"- problem: {_md(problem)}" for problem in data.get("problems") or []]
        if record.copy_back:
            counters = record.copy_back.get("counters") or {}
            out.append(
                f"- copied back to ElastiCache: {counters.get('carried')} keys the switched writers wrote "
                f"since the cutover, {counters.get('deleted')} they deleted; {counters.get('theirs')} "
                f"written there by others kept; {counters.get('conflicts')} changed on both sides "
                f"(done: {record.copy_back.get('done')})"
            )
        if record.cleared:
            kept = record.cleared.get("kept")
            line = f"- the self-hosted Redis after the rollback: {_md(record.cleared.get('reason'))}"
            if kept:
                stranded = kept.get("stranded") or {}
                line += (
                    f"; {stranded.get('differing')} keys only it holds (first: {_md(stranded.get('first'))})"
                )
            out.append(line)
    for label, clients in (
        ("before", record.elasticache_clients_before),
        ("after", record.elasticache_clients_after),
    ):
        if clients is None:
            continue
        if isinstance(clients, dict) and "lines" in clients:
            out.append(f"- ElastiCache clients {label} the cutover: {_md(clients.get('clients'))}")
            out += [f"  - left on ElastiCache: {_md(line)}" for line in clients.get("warnings") or []]
            out += [f"  - still used: {_md(line)}" for line in clients.get("stillUsed") or []]
            out += [f"  - {_md(line)}" for line in clients.get("oldEnvironments") or []]
        else:
            out.append(f"- ElastiCache clients {label} the cutover: {_md(json.dumps(clients)[:500])}")
    if record.bake:
        bake = record.bake
        out += ["", "## Bake", "", f"{_md(bake.get('status'))}: {_md(bake.get('summary'))}"]
        if bake.get("resultKey"):
            out.append(f"Every function's numbers: `{_md(bake.get('resultKey'))}` in the records bucket")
    if record.host_services or record.host_services_restored:
        out += ["", "## Host services", ""]
        for label, result in (
            ("switched", record.host_services),
            ("restored", record.host_services_restored),
        ):
            if result:
                out.append(f"- {label}: {_md(result.get('message'))}")
                out += [
                    f"  - {_md(entry.get('envFile'))}: {_md(entry.get('outcome'))}"
                    for entry in result.get("files") or []
                ]
                out += [f"  - left as it is: {_md(line)}" for line in result.get("leftovers") or []]
    return out


def render_markdown(report: AuditReport) -> str:
    """The report as Markdown, for a ticket or an auditor."""
    run = report.execution
    out = [
        f"# redis-migration audit: {run.name}",
        "",
        "| | |",
        "|---|---|",
        f"| Execution | `{run.arn}` |",
        f"| Status | **{run.status}** (exit {run.exit_code}): {_md(run.outcome)} |",
        f"| Started | {run.start_date} |",
        f"| Stopped | {run.stop_date or '-'} |",
        f"| Duration | {run.duration_seconds if run.duration_seconds is not None else '-'} s |",
        f"| Redrives | {run.redrive_count}"
        + (f" (last {run.redrive_date})" if run.redrive_date else "")
        + " |",
        f"| Started by | {report.trigger.kind}: {_md(report.trigger.detail)} |",
        f"| Environment / release | {report.trigger.environment} / {report.trigger.release} |",
    ]
    if report.approval:
        approval = report.approval
        out.append(f"| Approval | {approval.decision} by {approval.by or '-'} at {approval.at or '-'} |")
    if run.error:
        out.append(f"| Error | `{_md(run.error)}`: {_md(run.cause)} |")
    out += ["", "## Input", "", "```json", json.dumps(report.input, indent=2), "```", ""]
    out += ["## Functions", ""]
    if report.functions:
        out += [
            "| Function | Variable | Form | Before | After | Cutover | Restore |",
            "|---|---|---|---|---|---|---|",
        ]
        for function in report.functions:
            rows = function.changes or [ValueChange(key="(none)", before=None, after=None)]
            for number, change in enumerate(rows):
                first = number == 0
                out.append(
                    f"| {function.function_name if first else ''} | {change.key} | {change.form or ''} | "
                    f"{_md(_show(change.before))} | "
                    f"{_md(_show(change.after))} | {_md(function.cutover) if first else ''} | "
                    f"{_md(function.restore) if first else ''} |"
                )
    elif report.plan_record:
        out.append(f"The plan's functions are in `{report.plan_record}` (not read for this report).")
    else:
        out.append("No function plan was recorded (the run stopped before CheckPreconditions finished).")
    if report.template_guidance:
        out += [
            "",
            "## Deployed by CloudFormation or Terraform",
            "",
            *[f"    {line}" for line in report.template_guidance],
        ]
    if report.ingress:
        out += ["", f"Ingress: `{_md(json.dumps(report.ingress))}`"]
    if report.host:
        out += ["", "## Host", "", "| | Before | After |", "|---|---|---|"]
        for label, part, key in (
            ("config sha256", "config", "sha256"),
            ("service", "service", "active"),
            ("listening ports", "service", "listenPorts"),
            ("keys", "redis", "dbsize"),
            ("data digest", "redis", "digest"),
        ):
            before = ((report.host.before or {}).get(part) or {}).get(key)
            after = ((report.host.after or {}).get(part) or {}).get(key)
            out.append(f"| {label} | {_md(before)} | {_md(after)} |")
        if report.host.service_action:
            out.append(f"\nReverted: {report.host.reverted} (service {report.host.service_action})")
        out += [f"- still differs: {_md(line)}" for line in report.host.differences]
    out += _after_cutover_markdown(report)
    if report.secret:
        out += [
            f"Secret: {report.secret.get('name')} `{report.secret.get('arn')}`"
            f" (created: {report.secret.get('created')})"
        ]
    out += [
        "",
        "## States",
        "",
        "| # | State | Item | Entered | Duration (s) | Result | Detail |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, state in enumerate(report.states, 1):
        detail = state.summary or (f"{state.error}: {state.cause}" if state.error else "")
        out.append(
            f"| {number} | {'↳ ' * state.depth}{state.name} | {_md(state.item)} | {state.entered_at} | "
            f"{state.duration_seconds if state.duration_seconds is not None else '-'} | {state.result} | "
            f"{_md(detail)} |"
        )
    out += ["", "## Errors", ""]
    out += [
        f"- **{e.state}**{f' ({e.item})' if e.item else ''} at {e.at}: `{_md(e.error)}`: {_md(e.cause)}"
        for e in report.errors
    ]
    if not report.errors:
        out.append("None.")
    out += ["", "## Rollback", ""]
    rollback = report.rollback
    if rollback is None:
        out.append("Not taken.")
    else:
        out += [
            f"Reason: `{_md(rollback.reason_error)}`: {_md(rollback.reason_cause)}",
            "",
            "Path: " + " → ".join(rollback.path),
            "",
            "Complete: "
            + ("yes" if rollback.complete else "NO" if rollback.complete is False else "not finished"),
        ]
        if rollback.restores:
            out += ["", "| Batch | Restored | Already as before | Changed by others | Not restored |"]
            out += ["|---|---|---|---|---|"]
            out += [
                f"| {_md(r.get('index'))} | {_md(r.get('restored'))} | {_md(r.get('unchanged'))} | "
                f"{_md(r.get('changedByOthers'))} | "
                + _md(
                    "; ".join(
                        f"{n.get('functionName')}: {n.get('detail')}" for n in r.get("notRestored") or []
                    )
                )
                + " |"
                for r in rollback.restores
            ]
        if rollback.revoked_source_group_ids:
            out += ["", f"Ingress revoked from: {', '.join(rollback.revoked_source_group_ids)}"]
        if rollback.left_to_do_by_hand:
            out += ["", "Left to do by hand:", *[f"- {_md(item)}" for item in rollback.left_to_do_by_hand]]
    out += decommission_markdown(report)
    return "\n".join(out) + "\n"


def decommission_markdown(report: AuditReport) -> list[str]:
    """The decommission section: what went, what stays, the saving and the way back."""
    record = report.decommission
    if record is None:
        return []
    state = {True: "yes", False: "NO (re-run it)"}.get(record.complete, "no")  # type: ignore[arg-type]
    out = ["", "## Decommission", "", f"After migration: {_md(record.migration)}", "", f"Complete: {state}"]
    if record.refused_because:
        out += ["", f"Refused (nothing changed): {_md(record.refused_because)}"]
    out += ["", "Planned:", *[f"- {_md(line)}" for line in record.planned]]
    if record.kept:
        out += ["", "Kept:", *[f"- {_md(line)}" for line in record.kept]]
    if record.deleted:
        out += ["", "| Resource | Outcome |", "|---|---|"]
        out += [f"| {_md(item.get('resource'))} | {_md(item.get('outcome'))} |" for item in record.deleted]
    if record.revoked_rules:
        out += ["", "Rules revoked first:", *[f"- {_md(rule)}" for rule in record.revoked_rules]]
    if record.left:
        out += ["", "Left:", *[f"- {_md(item)}" for item in record.left]]
    out += [
        "",
        f"Final snapshot: `{record.final_snapshot}` ({record.snapshot_status or 'not taken'})",
        *[f"Exported: `{key}`" for key in record.exported_files],
        "",
        f"Monthly saving: {_md(record.saving)}",
    ]
    if record.restore_commands:
        out += ["", "The way back (docs/decommission.md):", "", "```bash", *record.restore_commands, "```"]
    return out


def render_table(report: AuditReport, console: Console) -> None:
    """The report as terminal tables (the default ``history`` format)."""
    run = report.execution
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    summary.add_row("execution", run.arn)
    summary.add_row("status", f"{run.status} (exit {run.exit_code}): {run.outcome}")
    summary.add_row(
        "started / stopped", f"{run.start_date} / {run.stop_date or '-'} ({run.duration_seconds} s)"
    )
    summary.add_row("started by", f"{report.trigger.kind}: {report.trigger.detail}")
    summary.add_row("environment / release", f"{report.trigger.environment} / {report.trigger.release}")
    summary.add_row("redrives", str(run.redrive_count))
    if report.approval:
        summary.add_row("approval", f"{report.approval.decision} by {report.approval.by or '-'}")
    if run.error:
        summary.add_row("error", f"{run.error}: {run.cause}")
    summary.add_row("input", json.dumps(report.input))
    console.print(summary)

    states = Table(title="States", title_justify="left")
    for column in ("state", "item", "entered", "s", "result", "detail"):
        states.add_column(column, overflow="fold")
    for state in report.states:
        detail = state.summary or (f"{state.error}: {state.cause}" if state.error else "")
        states.add_row(
            "  " * state.depth + state.name,
            state.item or "",
            (state.entered_at or "")[11:23],
            "" if state.duration_seconds is None else f"{state.duration_seconds:.3f}",
            state.result,
            escape(detail),
        )
    console.print(states)

    if report.functions:
        functions = Table(title="Functions", title_justify="left")
        for column in ("function", "variable", "before", "after", "cutover", "restore"):
            functions.add_column(column, overflow="fold")
        for function in report.functions:
            for number, change in enumerate(function.changes):
                first = number == 0
                functions.add_row(
                    function.function_name if first else "",
                    change.key,
                    _show(change.before),
                    _show(change.after),
                    (function.cutover or "") if first else "",
                    (function.restore or "") if first else "",
                )
        console.print(functions)
    for line in report.template_guidance:
        console.print(escape(line), soft_wrap=True)
    for error in report.errors:
        console.print(
            f"error in {error.state}{f' ({error.item})' if error.item else ''}: {escape(error.error)}: "
            f"{escape(str(error.cause))}",
            soft_wrap=True,
        )
    if report.decommission:
        record = report.decommission
        console.print(
            f"decommission after {record.migration}: complete {record.complete}; final snapshot "
            f"{record.final_snapshot} ({record.snapshot_status}); saving {escape(str(record.saving))}",
            soft_wrap=True,
        )
        for item in record.left:
            console.print(f"  left: {escape(item)}", soft_wrap=True)
    if report.rollback:
        rollback = report.rollback
        console.print(f"rollback ({rollback.reason_error}): " + " → ".join(rollback.path), soft_wrap=True)
        for item in rollback.left_to_do_by_hand:
            console.print(f"  left to do by hand: {escape(item)}", soft_wrap=True)
