#!/usr/bin/env bash
# Puts this host back as it was before run --run-id ID, from the record install_redis.sh wrote
# (/var/lib/redis-migration/runs/ID/): the previous config file (atomically; removed again when
# there was none), the kernel settings files, the limits drop-in of Redis's unit, the service's
# enabled state, and the service running on the old config (and limits) or stopped, as it was. The data is kept:
#   - Redis restarts only when the running config or limits differ from the ones put back (or the
#     service was not running, or listens on other ports);
#   - before a restart onto a config without AOF (or a stop), a BGSAVE makes dump.rdb current, the
#     only file such a config loads; after a restart the key count is checked (DataLoss).
# Idempotent: a second revert finds everything as recorded and changes nothing. No record for
# the run id means the install never got to change anything for it: nothing to do (said so).
# Not reverted: the package (a host without it before keeps it installed, stopped), the data
# directory's files (the data is kept on purpose), the host-local admin credential.
#
# Sent through SSM Run Command like the install (`bash -s -- ARGS <<'REVERT_REDIS_HOST_SCRIPT'`),
# with host/common.sh and host/redis_facts.sh in front. Needs no secret: the admin credential
# stays in its root-only file on the host.
#
# Output: short progress lines, then always, as the last line of stdout:
#   REDIS_REVERT_RESULT {"ok":...,"changed":...,"recorded":...,"runId":...,"configRestored":...,
#                        "serviceAction":...,"keysBefore":...,"keysAfter":...,"error":...,
#                        "message":...,"before":{...},"after":{...}}
# before: the facts recorded before the run; after: the host's facts now (see host/state.py).

set -uo pipefail
export LC_ALL=C
umask 077

RUN_ID=""
DIGEST_MAX_KEYS=100000
OS_RELEASE_FILE="${OS_RELEASE_FILE:-/etc/os-release}"
STATE_DIR=/var/lib/redis-migration
RUNS_DIR=$STATE_DIR/runs
STARTED_CONFIG_FILE=$STATE_DIR/started-config
SYSCTL_FILE=/etc/sysctl.d/60-redis-migration.conf
THP_TMPFILES=/etc/tmpfiles.d/redis-migration-thp.conf
LOG=/var/log/redis-migration-install.log
LOCK_FILE=/run/lock/redis-migration.lock

CHANGED=false
RECORDED=false
CONFIG_RESTORED=false
SERVICE_ACTION=none
KEYS_BEFORE=""
EXPIRES_BEFORE=0
KEYS_AFTER=""
BEFORE_JSON=null
FACTS_JSON=null
RESULT_PRINTED=false
NOTES=""
TMP=""

# (say, json_string, json_or_null, fail, need_value, on_exit: common.sh; facts: redis_facts.sh)
note() { NOTES="$NOTES; $1"; say "note: $1"; }

print_result() {
    local ok=$1 error=$2 message=$3
    RESULT_PRINTED=true
    printf 'REDIS_REVERT_RESULT {"ok":%s,"changed":%s,"recorded":%s,"runId":%s,"configRestored":%s,"serviceAction":%s,"keysBefore":%s,"keysAfter":%s,"error":%s,"message":%s,"before":%s,"after":%s}\n' \
        "$ok" "$CHANGED" "$RECORDED" "$(json_or_null "$RUN_ID")" "$CONFIG_RESTORED" "$(json_string "$SERVICE_ACTION")" \
        "${KEYS_BEFORE:-null}" "${KEYS_AFTER:-null}" "$(json_or_null "$error")" "$(json_string "${message:0:300}")" \
        "$BEFORE_JSON" "$FACTS_JSON"
}

# shellcheck disable=SC2317  # invoked by on_exit (common.sh)
cleanup() {
    [ -n "$TMP" ] && rm -f "$TMP"
    return 0
}
trap on_exit EXIT

while [ "$#" -gt 0 ]; do
    case "$1" in
        --run-id) need_value "$@"; RUN_ID=$2; shift 2 ;;
        --digest-max-keys) need_value "$@"; DIGEST_MAX_KEYS=$2; shift 2 ;;
        *) fail BadArgument "unknown argument (value not shown)" ;;
    esac
done
if ! [[ "$RUN_ID" =~ ^[A-Za-z0-9._@+=-]{1,80}$ ]] || [[ "$RUN_ID" =~ ^\.+$ ]]; then
    fail BadArgument "--run-id takes 1-80 letters, digits or . _ @ + = -"
fi
[[ "$DIGEST_MAX_KEYS" =~ ^[0-9]{1,9}$ ]] || fail BadArgument "--digest-max-keys must be a number"
[ "$(id -u)" -eq 0 ] || fail NotRoot "must run as root (SSM Run Command does)"

mkdir -p "$(dirname "$LOCK_FILE")" || fail Busy "cannot create $(dirname "$LOCK_FILE")"
exec 9>"$LOCK_FILE"
flock -w 300 9 || fail Busy "another install, backup, restore or revert still holds $LOCK_FILE after 300 s"

platform_table || fail UnsupportedOs "$PLATFORM_PROBLEM"
package_installed && resolve_unit_paths
RECORD=$RUNS_DIR/$RUN_ID

finish() {
    # The host's facts now (on the recorded port), then the result line.
    collect_host_facts "${1:-6379}" "$DIGEST_MAX_KEYS"
    print_result true "" "$2$NOTES"
    exit 0
}

if [ ! -f "$RECORD/state" ]; then
    finish 6379 "no before record for run $RUN_ID: the install never changed this host for it; nothing to do"
fi
RECORDED=true
BEFORE_JSON=$(head -c 20000 "$RECORD/facts.json" 2>/dev/null)
[ -n "$BEFORE_JSON" ] || BEFORE_JSON=null

recorded() {
    # Value of $1 in the record (parsed, not sourced).
    sed -n "s/^$1=//p" "$RECORD/state" | head -n 1
}
R_CONFIG_FILE=$(recorded CONFIG_FILE)
R_CONFIG_PRESENT=$(recorded CONFIG_PRESENT)
R_ENABLED=$(recorded ENABLED)
R_ACTIVE=$(recorded ACTIVE)
R_PORTS=$(recorded PORTS)
R_APPENDONLY_LIVE=$(recorded APPENDONLY_LIVE)
R_STARTED_CONFIG=$(recorded STARTED_CONFIG)
# Records written before the install managed limits have no LIMITS_PRESENT: there was no drop-in.
R_LIMITS_PRESENT=$(recorded LIMITS_PRESENT)
CONFIG_FILE=${R_CONFIG_FILE:-$CONFIG_FILE}
FIRST_PORT=${R_PORTS%% *}
FIRST_PORT=${FIRST_PORT:-6379}
if [ "$R_CONFIG_PRESENT" = true ]; then
    TARGET_SHA=$(sha256_of "$RECORD/config")
    TARGET_APPENDONLY=$(config_value "$RECORD/config" appendonly no)
else
    TARGET_SHA=absent
    TARGET_APPENDONLY=no
fi

# ---------------------------------------------------------------------------- the host now

collect_host_facts "$FIRST_PORT" 0
NOW_ACTIVE=$FACT_ACTIVE
NOW_PORTS=$FACT_PORTS
NOW_ACCESS=$REDIS_ACCESS
STARTED_NOW=$(cat "$STARTED_CONFIG_FILE" 2>/dev/null)

# The running server's config is known when one of our scripts started it since the record.
RUNNING_DIFFERS=false
if [ "$STARTED_NOW" != "$R_STARTED_CONFIG" ] && [ "$STARTED_NOW" != "$TARGET_SHA" ]; then
    RUNNING_DIFFERS=true
fi

# The limits drop-in: systemd applies a unit's limits (OOMScoreAdjust at least) when it starts it.
LIMITS_FILE=$(limits_dropin)
if [ "$R_LIMITS_PRESENT" = true ]; then TARGET_LIMITS_SHA=$(sha256_of "$RECORD/limits"); else TARGET_LIMITS_SHA=absent; fi
LIMITS_DIFFER=false
[ "$(sha256_of "$LIMITS_FILE")" != "$TARGET_LIMITS_SHA" ] && LIMITS_DIFFER=true

# What the revert will do to the server: restart it on the config put back, stop it, or neither.
CURRENT_SHA=$(sha256_of "$CONFIG_FILE")
ACTION=none
if [ "$R_ACTIVE" = active ]; then
    if [ "$NOW_ACTIVE" != active ] || [ "$CURRENT_SHA" != "$TARGET_SHA" ] || [ "$RUNNING_DIFFERS" = true ] ||
        [ "$NOW_PORTS" != "$R_PORTS" ] || [ "$LIMITS_DIFFER" = true ]; then
        ACTION=restart
    fi
elif [ "$NOW_ACTIVE" = active ]; then
    ACTION=stop
fi

# ---------------------------------------------------------------------------- data first

# Before a running server is restarted or stopped: count its keys and, when it comes back on a
# config without AOF (or stays stopped), make dump.rdb hold them all.
if [ "$NOW_ACTIVE" = active ] && [ "$ACTION" != none ]; then
    if [ "$NOW_ACCESS" = locked ]; then
        fail DataAtRisk "the running Redis does not accept this host's admin credential; its data cannot be saved before the revert restarts it; nothing was changed"
    fi
    if [ "$NOW_ACCESS" = admin ] || [ "$NOW_ACCESS" = none ]; then
        keyspace_counts && KEYS_BEFORE=$KEYS_TOTAL EXPIRES_BEFORE=$EXPIRES_TOTAL
        LIVE_AOF=$(info_field "$(redis_cmd INFO persistence)" aof_enabled)
        if [ "$TARGET_APPENDONLY" != yes ] || [ "$ACTION" = stop ]; then
            save_rdb || fail DataNotSaved "$DATA_PROBLEM; nothing was changed"
        elif [ "$LIVE_AOF" != 1 ] && [ "${KEYS_BEFORE:-0}" -gt 0 ]; then
            # Back onto a config with AOF from a server without it: the restart would load an
            # empty AOF. Only a server without auth lets us switch it on (CONFIG SET).
            [ "$NOW_ACCESS" = none ] ||
                fail DataAtRisk "the running Redis has its AOF off and the config put back has it on; nothing was changed"
            switch_aof_on || fail DataAtRisk "$DATA_PROBLEM; nothing was changed"
            CHANGED=true
        fi
    fi
fi

# ---------------------------------------------------------------------------- files

put_back() {
    # Put record file $1 at $2 ($3: present|absent in the record). Returns 0 when it changed.
    local source=$1 target=$2 present=$3 owner mode
    if [ "$present" = true ]; then
        [ -f "$target" ] && cmp -s "$source" "$target" && return 1
        owner=$(stat -c %U:%G "$target" 2>/dev/null || stat -c %U:%G "$source")
        mode=$(stat -c %a "$target" 2>/dev/null || stat -c %a "$source")
        mkdir -p "$(dirname "$target")" || fail RevertFailed "cannot create $(dirname "$target")"
        TMP=$(mktemp "$(dirname "$target")/.$(basename "$target").XXXXXX") || fail RevertFailed "cannot write next to $target"
        if ! cp "$source" "$TMP" || ! chown "$owner" "$TMP" || ! chmod "$mode" "$TMP" || ! mv -f "$TMP" "$target"; then
            fail RevertFailed "cannot put $target back"
        fi
        TMP=""
        return 0
    fi
    [ -e "$target" ] || return 1
    # There was none: ours is moved aside (not deleted), where an operator can still read it.
    mv -f "$target" "$target.reverted-$RUN_ID" || fail RevertFailed "cannot move $target aside"
    return 0
}

if put_back "$RECORD/config" "$CONFIG_FILE" "$R_CONFIG_PRESENT"; then
    CHANGED=true CONFIG_RESTORED=true
    say "config: put back $CONFIG_FILE as before run $RUN_ID"
fi
if [ "$LIMITS_DIFFER" = true ] && put_back "$RECORD/limits" "$LIMITS_FILE" "$R_LIMITS_PRESENT"; then
    CHANGED=true
    say "limits: put back the drop-in of $SERVICE as before run $RUN_ID"
    systemctl daemon-reload >>"$LOG" 2>&1 || fail RevertFailed "systemctl daemon-reload failed"
fi
KERNEL_CHANGED=false
put_back "$RECORD/sysctl" "$SYSCTL_FILE" "$(recorded SYSCTL_PRESENT)" && KERNEL_CHANGED=true
put_back "$RECORD/thp" "$THP_TMPFILES" "$(recorded THP_PRESENT)" && KERNEL_CHANGED=true
if [ "$KERNEL_CHANGED" = true ]; then
    CHANGED=true
    say "kernel: settings files put back"
    # The live values too, where the kernel lets us (best effort: global knobs, often read-only).
    live_ok=true
    value=$(recorded OVERCOMMIT)
    [ -z "$value" ] || sysctl -q -w "vm.overcommit_memory=$value" >/dev/null 2>&1 || live_ok=false
    value=$(recorded SOMAXCONN)
    [ -z "$value" ] || sysctl -q -w "net.core.somaxconn=$value" >/dev/null 2>&1 || live_ok=false
    for knob in enabled defrag; do
        value=$(recorded "THP_${knob^^}")
        [ -z "$value" ] || { echo "$value" >"/sys/kernel/mm/transparent_hugepage/$knob"; } 2>/dev/null || live_ok=false
    done
    [ "$live_ok" = true ] || note "live kernel values not changed now (read-only /proc/sys or /sys); files restored for next boot"
fi

# ---------------------------------------------------------------------------- service

NOW_ENABLED=$(systemctl is-enabled "$SERVICE" 2>/dev/null | head -n 1)
if [ "$R_ENABLED" = enabled ] && [ "$NOW_ENABLED" != enabled ]; then
    systemctl enable "$SERVICE" >>"$LOG" 2>&1 || fail RevertFailed "systemctl enable $SERVICE failed"
    CHANGED=true
elif { [ "$R_ENABLED" = disabled ] || [ -z "$R_ENABLED" ] || [ "$R_ENABLED" = not-found ]; } &&
    [ "$NOW_ENABLED" = enabled ]; then
    # No unit before the run (the package came with it): disabled is the nearest state.
    systemctl disable "$SERVICE" >>"$LOG" 2>&1 || fail RevertFailed "systemctl disable $SERVICE failed"
    CHANGED=true
elif [ -n "$R_ENABLED" ] && [ "$R_ENABLED" != "$NOW_ENABLED" ] && [ "$R_ENABLED" != enabled ] && [ "$R_ENABLED" != disabled ]; then
    note "the service was '$R_ENABLED' before; left '$NOW_ENABLED'"
fi

if [ "$R_ACTIVE" = active ]; then
    if [ "$ACTION" = restart ]; then
        say "service: restarting $SERVICE on the config from before run $RUN_ID"
        systemctl restart "$SERVICE" >>"$LOG" 2>&1 || fail ServiceFailedToStart "systemctl restart $SERVICE failed"
        printf '%s\n' "$TARGET_SHA" >"$STARTED_CONFIG_FILE"
        CHANGED=true
        SERVICE_ACTION=restarted
        [ "$NOW_ACTIVE" = active ] || SERVICE_ACTION=started
        NEW_PORTS=$(listen_ports_of "$(service_main_pid)")
        if [ -z "$NEW_PORTS" ] || ! wait_answering "${NEW_PORTS%% *}" 240; then
            fail ServiceFailedToStart "$SERVICE did not answer after the restart (ports: ${NEW_PORTS:-none})"
        fi
        # Every key from before the restart is back (keys whose TTL ran out excepted).
        if redis_connect "${NEW_PORTS%% *}" && [ "$REDIS_ACCESS" != locked ] && keyspace_counts; then
            KEYS_AFTER=$KEYS_TOTAL
            if [ -n "$KEYS_BEFORE" ] && [ "$KEYS_AFTER" -lt $((KEYS_BEFORE - EXPIRES_BEFORE)) ]; then
                fail DataLoss "$KEYS_BEFORE keys before the restart, $KEYS_AFTER after"
            fi
        elif [ -n "$KEYS_BEFORE" ]; then
            note "the Redis put back requires a password this host does not have: keys not counted"
        fi
    fi
    # The takeover switched the AOF on in the old server without touching its config: off again.
    if [ "$R_APPENDONLY_LIVE" = 0 ] && [ "$TARGET_APPENDONLY" != yes ] && redis_connect "${R_PORTS%% *}" &&
        [ "$REDIS_ACCESS" = none ] && [ "$(info_field "$(redis_cmd INFO persistence)" aof_enabled)" = 1 ]; then
        [ "$(redis_cmd CONFIG SET appendonly no)" = OK ] || fail RevertFailed "CONFIG SET appendonly no failed"
        CHANGED=true
        say "data: AOF switched off again, as before run $RUN_ID"
    fi
elif [ "$ACTION" = stop ]; then
    say "service: stopping $SERVICE (it was not running before run $RUN_ID)"
    systemctl stop "$SERVICE" >>"$LOG" 2>&1 || fail RevertFailed "systemctl stop $SERVICE failed"
    rm -f "$STARTED_CONFIG_FILE"
    CHANGED=true
    SERVICE_ACTION=stopped
fi

if [ "$CHANGED" = true ]; then
    finish "$FIRST_PORT" "host put back as before run $RUN_ID"
fi
finish "$FIRST_PORT" "host already as before run $RUN_ID; nothing changed"
