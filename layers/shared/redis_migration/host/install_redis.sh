#!/usr/bin/env bash
# Installs and configures a Redis-protocol server (version >= --min-version) on this host.
#
# Sent through SSM Run Command (AWS-RunShellScript runs /bin/sh, so the caller feeds this file to
# bash on stdin: `bash -s -- ARGS <<'INSTALL_REDIS_SCRIPT'`). Idempotent: a second run with the
# same arguments changes nothing and does not restart the server.
#
# Secrets: only the SHA-256 hex of the password is given (ACL `#<hex>`); the password itself never
# reaches this host. Argument values are never echoed, so a caller that passes the wrong thing
# by mistake does not leak it into the SSM output. The host-local admin credential (a least-
# privilege ACL user for inspection, digest and revert; see redis_facts.sh) is generated here on
# first install, kept in a root-only file, and only its SHA-256 goes into the config.
#
# Limits (all five or none: --memory-high BYTES --memory-max BYTES --cpu-weight N --io-weight N
# --oom-score-adjust N): a systemd drop-in for Redis's unit so that Redis yields to the services it
# shares the instance with (docs/operations.md, "Sharing the instance"); a change restarts Redis,
# since systemd applies OOMScoreAdjust when it starts the process. Without them the unit's limits
# are left as they are.
#
# Before its first change, with --run-id ID (the execution's name), the host's state is recorded
# once under /var/lib/redis-migration/runs/ID/ (config copy or "absent", kernel settings files,
# the limits drop-in, service enabled/active, ports, the inspect facts), for revert_redis_host.sh. A retried install
# with the same id keeps the first record; the newest 20 records are kept.
#
# Refused before any change: a port held by another process (PortInUse); an existing Redis whose
# data cannot be checked (ExistingRedisLocked, ExistingRedisUnreachable) or lives elsewhere
# (ExistingDataElsewhere). An existing Redis that holds data is taken over without loss: its AOF
# is switched on while it runs (a stopped one is first started on its own config to load its
# dump.rdb), so the restart on our config (appendonly yes) loads every key; the key count after
# the restart is checked (DataLoss).
#
# Output: short progress lines, then always, as the last line of stdout:
#   REDIS_INSTALL_RESULT {"ok":...,"changed":...,"server":...,"version":...,"configSha256":...,
#                         "service":...,"port":...,"runId":...,"recorded":...,"takeover":...,
#                         "keysBefore":...,"keysAfter":...,"limitsChanged":...,"error":...,
#                         "message":...}
# GetCommandInvocation keeps the first 24,000 characters of stdout (the console 2,500), so
# package-manager chatter goes to a log file.
#
# Test seams (environment): OS_RELEASE_FILE (default /etc/os-release) and REDIS_SERVER_BIN
# (the binary whose --version is checked; default: the distro's server binary).

set -uo pipefail
export LC_ALL=C
umask 022

PORT=6379
BIND=""
PASSWORD_SHA256=""
MAXMEMORY="512mb"
MAXMEMORY_POLICY="allkeys-lru"
AL2023_SERVER="valkey"
MIN_VERSION="7.0"
RUN_ID=""
MEMORY_HIGH=""
MEMORY_MAX=""
CPU_WEIGHT=""
IO_WEIGHT=""
OOM_SCORE_ADJUST=""

OS_RELEASE_FILE="${OS_RELEASE_FILE:-/etc/os-release}"
INSTALL_LOG=/var/log/redis-migration-install.log
STATE_DIR=/var/lib/redis-migration
RUNS_DIR=$STATE_DIR/runs
KEEP_RUNS=20
STARTED_CONFIG_FILE=$STATE_DIR/started-config
SYSCTL_FILE=/etc/sysctl.d/60-redis-migration.conf
THP_TMPFILES=/etc/tmpfiles.d/redis-migration-thp.conf
DATA_DIR=/var/lib/redis
LOG_DIR=/var/log/redis
# Valkey keeps the Redis compatibility version frozen at 7.2.4 (its INFO reports
# redis_version:7.2.4 next to valkey_version); clients and --min-version care about the former.
VALKEY_REDIS_COMPAT_VERSION="7.2.4"

CHANGED=false
SERVER_NAME=""
SERVER_VERSION=""
CONFIG_SHA256=""
SERVICE_STATE="unknown"
RESULT_PRINTED=false
NOTES=""
RECORDED=false
TAKEOVER=""
KEYS_BEFORE=""
EXPIRES_BEFORE=0
KEYS_AFTER=""
RECORD_TMP=""
LIMITS_CHANGED=false

# (say, json_string, json_or_null, fail, need_value and on_exit come from host/common.sh, the
# platform table, facts and Redis helpers from host/redis_facts.sh, both sent in front of this
# script; print_result and cleanup, which they call, are this script's own)
note() { NOTES="$NOTES; $1"; say "note: $1"; }

print_result() {
    local ok=$1 error=$2 message=$3
    RESULT_PRINTED=true
    printf 'REDIS_INSTALL_RESULT {"ok":%s,"changed":%s,"server":%s,"version":%s,"configSha256":%s,"service":%s,"port":%s,"runId":%s,"recorded":%s,"takeover":%s,"keysBefore":%s,"keysAfter":%s,"limitsChanged":%s,"error":%s,"message":%s}\n' \
        "$ok" "$CHANGED" "$(json_or_null "$SERVER_NAME")" "$(json_or_null "$SERVER_VERSION")" \
        "$(json_or_null "$CONFIG_SHA256")" "$(json_string "$SERVICE_STATE")" "$PORT" "$(json_or_null "$RUN_ID")" \
        "$RECORDED" "$(json_or_null "$TAKEOVER")" "${KEYS_BEFORE:-null}" "${KEYS_AFTER:-null}" \
        "$LIMITS_CHANGED" "$(json_or_null "$error")" "$(json_string "${message:0:300}")"
}

# shellcheck disable=SC2317  # invoked by on_exit (common.sh)
cleanup() {
    [ -n "$RECORD_TMP" ] && rm -rf "$RECORD_TMP"
    return 0
}
trap on_exit EXIT

log_tail() {
    # Enough of the package manager's own words to diagnose, within SSM's output budget.
    tail -c 400 "$INSTALL_LOG" 2>/dev/null | tr '\n' ' '
}

# ---------------------------------------------------------------------------- arguments

while [ "$#" -gt 0 ]; do
    case "$1" in
        --port) need_value "$@"; PORT=$2; shift 2 ;;
        --bind) need_value "$@"; BIND=$2; shift 2 ;;
        --password-sha256) need_value "$@"; PASSWORD_SHA256=$2; shift 2 ;;
        --maxmemory) need_value "$@"; MAXMEMORY=$2; shift 2 ;;
        --maxmemory-policy) need_value "$@"; MAXMEMORY_POLICY=$2; shift 2 ;;
        --al2023-server) need_value "$@"; AL2023_SERVER=$2; shift 2 ;;
        --min-version) need_value "$@"; MIN_VERSION=$2; shift 2 ;;
        --run-id) need_value "$@"; RUN_ID=$2; shift 2 ;;
        --memory-high) need_value "$@"; MEMORY_HIGH=$2; shift 2 ;;
        --memory-max) need_value "$@"; MEMORY_MAX=$2; shift 2 ;;
        --cpu-weight) need_value "$@"; CPU_WEIGHT=$2; shift 2 ;;
        --io-weight) need_value "$@"; IO_WEIGHT=$2; shift 2 ;;
        --oom-score-adjust) need_value "$@"; OOM_SCORE_ADJUST=$2; shift 2 ;;
        *) fail BadArgument "unknown argument (value not shown)" ;;
    esac
done

if ! [[ "$PORT" =~ ^[0-9]{1,5}$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    fail BadArgument "--port must be 1-65535"
fi
[ -n "$BIND" ] || fail BadArgument "--bind is required (e.g. \"<private-ip> 127.0.0.1\")"
BIND_HAS_LOOPBACK=false
for address in $BIND; do
    if ! [[ "$address" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ || "$address" =~ ^[0-9a-fA-F:]+$ ]]; then
        fail BadArgument "--bind takes IP addresses separated by spaces"
    fi
    case "$address" in 127.0.0.1 | 0.0.0.0) BIND_HAS_LOOPBACK=true ;; esac
done
# The post-install check talks to the server over 127.0.0.1 only.
[ "$BIND_HAS_LOOPBACK" = true ] || fail BadArgument "--bind must include 127.0.0.1 (or 0.0.0.0)"
[[ "$PASSWORD_SHA256" =~ ^[0-9a-f]{64}$ ]] ||
    fail BadArgument "--password-sha256 must be 64 lowercase hex characters (value not shown)"
[[ "$MAXMEMORY" =~ ^[0-9]{1,15}([kmg]b?|b)?$ ]] || fail BadArgument "--maxmemory must look like 512mb"
case "$MAXMEMORY_POLICY" in
    noeviction | allkeys-lru | allkeys-lfu | allkeys-random | volatile-lru | volatile-lfu | \
        volatile-random | volatile-ttl) ;;
    *) fail BadArgument "--maxmemory-policy is not a Redis eviction policy" ;;
esac
case "$AL2023_SERVER" in valkey | refuse) ;; *) fail BadArgument "--al2023-server is valkey or refuse" ;; esac
[[ "$MIN_VERSION" =~ ^[0-9]+(\.[0-9]+){0,2}$ ]] || fail BadArgument "--min-version must look like 7.0"
# A Step Functions execution name: 1-80 characters; a directory name here.
if [ -n "$RUN_ID" ] && { ! [[ "$RUN_ID" =~ ^[A-Za-z0-9._@+=-]{1,80}$ ]] || [[ "$RUN_ID" =~ ^\.+$ ]]; }; then
    fail BadArgument "--run-id takes 1-80 letters, digits or . _ @ + = -"
fi

LIMITS_GIVEN="$MEMORY_HIGH$MEMORY_MAX$CPU_WEIGHT$IO_WEIGHT$OOM_SCORE_ADJUST"
if [ -n "$LIMITS_GIVEN" ]; then
    for value in "$MEMORY_HIGH" "$MEMORY_MAX"; do
        if ! [[ "$value" =~ ^[0-9]{8,15}$ ]] || [ "$value" -lt 67108864 ]; then
            fail BadArgument "--memory-high and --memory-max take a number of bytes, at least 64 MiB"
        fi
    done
    [ "$MEMORY_HIGH" -le "$MEMORY_MAX" ] || fail BadArgument "--memory-high must not be above --memory-max"
    for value in "$CPU_WEIGHT" "$IO_WEIGHT"; do
        if ! [[ "$value" =~ ^[0-9]{1,5}$ ]] || [ "$value" -lt 1 ] || [ "$value" -gt 10000 ]; then
            fail BadArgument "--cpu-weight and --io-weight take 1-10000"
        fi
    done
    if ! [[ "$OOM_SCORE_ADJUST" =~ ^-?[0-9]{1,4}$ ]] || [ "$OOM_SCORE_ADJUST" -lt -1000 ] || [ "$OOM_SCORE_ADJUST" -gt 1000 ]; then
        fail BadArgument "--oom-score-adjust takes -1000 to 1000"
    fi
fi

[ "$(id -u)" -eq 0 ] || fail NotRoot "must run as root (SSM Run Command does)"

# A retried InstallRedis step may send a second command while the first still runs; backup and
# restore take the same lock. Waiting (not failing) lets a duplicate find the work done.
LOCK_FILE=/run/lock/redis-migration.lock
mkdir -p "$(dirname "$LOCK_FILE")" || fail ConfigWriteFailed "cannot create $(dirname "$LOCK_FILE")"
exec 9>"$LOCK_FILE"
flock -w 300 9 || fail Busy "another install, backup or restore still holds $LOCK_FILE after 300 s"

# ---------------------------------------------------------------------------- helpers

version_ge() {
    # True when $1 >= $2 (dotted numeric versions).
    [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]
}

compat_version() {
    # The Redis version clients see (INFO redis_version) for a server of $1 at version $2.
    if [ "$1" = valkey-server ]; then printf '%s' "$VALKEY_REDIS_COMPAT_VERSION"; else printf '%s' "$2"; fi
}

install_file() {
    # Atomically put the content of temp file $1 at $2 (same directory, then rename), keeping
    # the previous version as $2.previous. Sets CHANGED and returns 0 when the file changed.
    local tmp=$1 target=$2 owner=$3 mode=$4
    if [ -f "$target" ] && cmp -s "$tmp" "$target"; then
        rm -f "$tmp"
        chown "$owner" "$target" && chmod "$mode" "$target"
        return 1
    fi
    if ! chown "$owner" "$tmp" || ! chmod "$mode" "$tmp"; then
        fail ConfigWriteFailed "cannot set owner/mode on $target"
    fi
    if [ -f "$target" ]; then
        cp -p "$target" "$target.previous" || fail ConfigWriteFailed "cannot keep $target.previous"
    fi
    mv -f "$tmp" "$target" || fail ConfigWriteFailed "cannot replace $target"
    CHANGED=true
    return 0
}

temp_next_to() {
    mktemp "$(dirname "$1")/.$(basename "$1").XXXXXX" || fail ConfigWriteFailed "cannot create a temp file next to $1"
}

# ---------------------------------------------------------------------------- the platform

[ -r "$OS_RELEASE_FILE" ] || fail UnsupportedOs "cannot read $OS_RELEASE_FILE"
# Per platform (redis_facts.sh): package manager, package, binaries, config, unit, user, pidfile.
platform_table || fail UnsupportedOs "$PLATFORM_PROBLEM"
# AL2023 offers redis6 (6.2, too old) and valkey 8: Valkey is the only way to a 7.x protocol server
# from the distro's own repositories, unless the caller forbids it.
if [ "$PLATFORM" = al2023 ] && [ "$AL2023_SERVER" != valkey ]; then
    fail ServerTooOld "Amazon Linux 2023 offers redis6 6.2 only and --al2023-server refuse forbids valkey"
fi
# RHEL 9's default redis is 6.2; 9.4+ offers a redis:7 module stream. Use it when the
# repositories have it, refuse otherwise (decided below, before any change).
SERVER_NAME=$(basename "$SERVER_BIN")
VERSION_BIN="${REDIS_SERVER_BIN:-$SERVER_BIN}"
say "platform: $PLATFORM ($OS_ID $OS_VERSION), server: $SERVER_NAME"

# Every supported platform runs systemd; without it we could not supervise the server.
[ -d /run/systemd/system ] || fail NoServiceManager "systemd is not running on this host"

# ---------------------------------------------------------------------------- version, before any change

candidate_version() {
    # The version the package manager would install, without installing it.
    case "$PLATFORM" in
        debian)
            apt-cache policy "$PACKAGE" 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9]*:\)\{0,1\}\([0-9][0-9.]*\).*/\2/p' | head -n 1
            ;;
        al2023 | rhel9)
            dnf -q repoquery --latest-limit 1 --queryformat '%{version}\n' "$PACKAGE" 2>/dev/null | head -n 1
            ;;
    esac
}

RHEL_ENABLE_STREAM=""
INSTALLED_BEFORE=false
if package_installed && [ -x "$VERSION_BIN" ]; then
    INSTALLED_BEFORE=true
    SERVER_VERSION=$(binary_version "$VERSION_BIN")
    [ -n "$SERVER_VERSION" ] || fail ServerTooOld "cannot read the version of the installed $SERVER_NAME"
else
    case "$PLATFORM" in
        debian)
            CANDIDATE=$(candidate_version)
            if [ -z "$CANDIDATE" ]; then
                # Fresh cloud images may have empty package lists: refresh once, then ask again.
                say "refreshing package lists"
                apt-get update >>"$INSTALL_LOG" 2>&1 || fail InstallPackageFailed "apt-get update failed: $(log_tail)"
                CANDIDATE=$(candidate_version)
            fi
            ;;
        al2023)
            command -v dnf >/dev/null || fail InstallPackageFailed "dnf not found"
            CANDIDATE=$(candidate_version)
            ;;
        rhel9)
            command -v dnf >/dev/null || fail InstallPackageFailed "dnf not found"
            if dnf -q module list redis 2>/dev/null | grep -Eq '^redis +7'; then
                RHEL_ENABLE_STREAM="redis:7"
                CANDIDATE=7.0
            else
                CANDIDATE=$(candidate_version)
            fi
            ;;
    esac
    [ -n "${CANDIDATE:-}" ] || fail InstallPackageFailed "no installable $PACKAGE package found"
    SERVER_VERSION=$CANDIDATE
fi
COMPAT_VERSION=$(compat_version "$SERVER_NAME" "$SERVER_VERSION")
version_ge "$COMPAT_VERSION" "$MIN_VERSION" ||
    fail ServerTooOld "$SERVER_NAME $SERVER_VERSION is older than $MIN_VERSION; nothing was changed"

# ---------------------------------------------------------------------------- the host before, refusals

# What is there now (read-only; the digest is left to the inspect command).
package_installed && resolve_unit_paths
collect_host_facts "$PORT" 0
BEFORE_ACCESS=$REDIS_ACCESS

# A port held by anything but our Redis unit: the restart would leave Redis failed.
port_owner "$PORT" "$FACT_PID"
if [ "$PORT_STATUS" = other ]; then
    fail PortInUse "port $PORT is in use by ${PORT_PROCESS:-another process} (pid ${PORT_PID:-?}); nothing was changed"
fi
memory_bytes() {
    # Redis's units (config.c memtoll): k/m/g are powers of 1000, kb/mb/gb of 1024. Empty when the
    # size is above 64 TiB (host_rules.MAX_MEMORY_SIZE_BYTES), checked before multiplying.
    local number=$((10#${1%%[a-z]*})) unit=${1##*[0-9]} multiplier
    case "$unit" in
        "" | b) multiplier=1 ;;
        k) multiplier=1000 ;;
        kb) multiplier=1024 ;;
        m) multiplier=1000000 ;;
        mb) multiplier=1048576 ;;
        g) multiplier=1000000000 ;;
        gb) multiplier=1073741824 ;;
    esac
    [ "$number" -le $((70368744177664 / multiplier)) ] && echo $((number * multiplier))
}

[ -n "$(memory_bytes "$MAXMEMORY")" ] || fail BadArgument "--maxmemory is above 64 TiB"

# A maxmemory below the data already held would evict keys (or refuse writes) right after the
# restart: refused, as the preflight does (host/rules.py), in case the script is run on its own.
if [ "$BEFORE_ACCESS" = none ] || [ "$BEFORE_ACCESS" = admin ]; then
    HELD=$(info_field "$(redis_cmd INFO memory)" used_memory)
    if [[ "$HELD" =~ ^[0-9]+$ ]] && [ "$(memory_bytes "$MAXMEMORY")" -lt $((HELD * 5 / 4)) ]; then
        fail MaxmemoryTooLow "--maxmemory $MAXMEMORY is below the $HELD bytes the running Redis holds (+25%); nothing was changed"
    fi
fi
# An existing Redis whose data we cannot check is not restarted under our config.
if [ "$FACT_ACTIVE" = active ] && [ "$FACT_OURS" = false ]; then
    if [ "$BEFORE_ACCESS" = locked ]; then
        fail ExistingRedisLocked "the running $SERVICE requires a password this host does not have; its data cannot be checked; nothing was changed"
    fi
    if [ "$BEFORE_ACCESS" = down ]; then
        fail ExistingRedisUnreachable "the running $SERVICE does not answer on 127.0.0.1 (ports: ${FACT_PORTS:-none}); nothing was changed"
    fi
fi
if [ "$FACT_OURS" = false ] && [ "${FACT_DATA_DIR%/}" != "$DATA_DIR" ] &&
    { [ "$FACT_RDB" = true ] || [ "$FACT_AOF" = true ]; }; then
    fail ExistingDataElsewhere "the existing Redis keeps its data in $FACT_DATA_DIR, this install uses $DATA_DIR; nothing was changed"
fi

record_value() { printf '%s=%s\n' "$1" "$2"; }

record_file() {
    # Copy $1 into the record as $2, or mark it absent.
    if [ -f "$1" ]; then
        cp -p "$1" "$RECORD_TMP/$2" || fail RecordFailed "cannot copy $1 into the record"
        record_value "${2^^}_PRESENT" true
    else
        record_value "${2^^}_PRESENT" false
    fi
}

# The before record, written once per run id before the first change (a retried install keeps it).
# Its state file marks it complete: the run's directory may already hold other records of the run
# (host_services.sh keeps its own under services/).
if [ -n "$RUN_ID" ] && [ ! -f "$RUNS_DIR/$RUN_ID/state" ]; then
    mkdir -p "$RUNS_DIR" && chmod 0700 "$STATE_DIR/runs" 2>/dev/null
    RECORD_TMP=$(mktemp -d "$RUNS_DIR/.record.XXXXXX") || fail RecordFailed "cannot create a record under $RUNS_DIR"
    APPENDONLY_LIVE=""
    if [ "$BEFORE_ACCESS" = none ] || [ "$BEFORE_ACCESS" = admin ]; then
        APPENDONLY_LIVE=$(info_field "$(redis_cmd INFO persistence)" aof_enabled)
    fi
    {
        record_value RECORDED_AT "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        record_value CONFIG_FILE "$CONFIG_FILE"
        record_file "$CONFIG_FILE" config
        record_file "$SYSCTL_FILE" sysctl
        record_file "$THP_TMPFILES" thp
        record_file "$(limits_dropin)" limits
        record_value SERVICE "$SERVICE"
        record_value ENABLED "$FACT_ENABLED"
        record_value ACTIVE "$FACT_ACTIVE"
        record_value PORTS "$FACT_PORTS"
        record_value APPENDONLY_LIVE "$APPENDONLY_LIVE"
        record_value STARTED_CONFIG "$(cat "$STARTED_CONFIG_FILE" 2>/dev/null)"
        record_value OVERCOMMIT "$(cat /proc/sys/vm/overcommit_memory 2>/dev/null)"
        record_value SOMAXCONN "$(cat /proc/sys/net/core/somaxconn 2>/dev/null)"
        record_value THP_ENABLED "$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
        record_value THP_DEFRAG "$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null)"
    } >"$RECORD_TMP/state" || fail RecordFailed "cannot write the record"
    printf '%s\n' "$FACTS_JSON" >"$RECORD_TMP/facts.json" || fail RecordFailed "cannot write the record"
    # Complete or absent: the directory appears under its final name only when written; into a
    # directory that exists already, the state file goes last.
    if [ -d "$RUNS_DIR/$RUN_ID" ]; then
        for part in "$RECORD_TMP"/*; do
            [ "$(basename "$part")" = state ] && continue
            mv -f "$part" "$RUNS_DIR/$RUN_ID/" || fail RecordFailed "cannot move the record into place"
        done
        if ! mv -f "$RECORD_TMP/state" "$RUNS_DIR/$RUN_ID/state" || ! rmdir "$RECORD_TMP"; then
            fail RecordFailed "cannot move the record into place"
        fi
    else
        mv -T "$RECORD_TMP" "$RUNS_DIR/$RUN_ID" || fail RecordFailed "cannot move the record into place"
    fi
    RECORD_TMP=""
    RECORDED=true
    say "recorded the host before run $RUN_ID"
    # The newest KEEP_RUNS records stay; a rollback long after that has the functions to undo, not the host.
    mapfile -t OLD_RUNS < <(find "$RUNS_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %f\n' | sort -rn | tail -n +"$((KEEP_RUNS + 1))" | cut -d ' ' -f 2-)
    for old in "${OLD_RUNS[@]}"; do
        [ "$old" = "$RUN_ID" ] || rm -rf "${RUNS_DIR:?}/$old"
    done
fi

# ---------------------------------------------------------------------------- install

SERVER_CHANGED=false
if [ "$INSTALLED_BEFORE" = false ]; then
    say "installing $PACKAGE $SERVER_VERSION"
    case "$PLATFORM" in
        debian)
            # Lock timeout: cloud-init or unattended-upgrades may hold the dpkg lock at boot.
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y "$PACKAGE" \
                >>"$INSTALL_LOG" 2>&1 || fail InstallPackageFailed "apt-get install $PACKAGE failed: $(log_tail)"
            ;;
        al2023 | rhel9)
            if [ -n "$RHEL_ENABLE_STREAM" ]; then
                dnf -y module enable "$RHEL_ENABLE_STREAM" >>"$INSTALL_LOG" 2>&1 ||
                    fail InstallPackageFailed "dnf module enable $RHEL_ENABLE_STREAM failed: $(log_tail)"
            fi
            dnf -y install "$PACKAGE" >>"$INSTALL_LOG" 2>&1 ||
                fail InstallPackageFailed "dnf install $PACKAGE failed: $(log_tail)"
            ;;
    esac
    CHANGED=true
    SERVER_CHANGED=true
    [ -x "$VERSION_BIN" ] || fail InstallPackageFailed "$SERVER_BIN missing after install"
    SERVER_VERSION=$(binary_version "$VERSION_BIN")
    COMPAT_VERSION=$(compat_version "$SERVER_NAME" "$SERVER_VERSION")
    version_ge "$COMPAT_VERSION" "$MIN_VERSION" ||
        fail ServerTooOld "installed $SERVER_NAME ${SERVER_VERSION:-?} is older than $MIN_VERSION; config left as it was"
fi
say "server: $SERVER_NAME $SERVER_VERSION (Redis-compatible $COMPAT_VERSION)"

resolve_unit_paths
id "$SERVICE_USER" >/dev/null 2>&1 || fail InstallPackageFailed "the service user $SERVICE_USER does not exist"

# A binary replaced since our last restart (e.g. an unattended upgrade) also needs a restart.
mkdir -p "$STATE_DIR" && chmod 0755 "$STATE_DIR"
SERVER_STAMP="$SERVER_BIN $(sha256_of "$SERVER_BIN")"
if [ "$(cat "$STATE_DIR/server" 2>/dev/null)" != "$SERVER_STAMP" ]; then
    SERVER_CHANGED=true
fi

# ---------------------------------------------------------------------------- kernel settings

# Persisted for boot; applied now where the kernel lets us. Never lower somaxconn (kernels >= 5.4
# default to 4096), only raise it to at least Redis's tcp-backlog.
SOMAXCONN=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 0)
[ "$SOMAXCONN" -ge 1024 ] 2>/dev/null || SOMAXCONN=1024
TMP=$(temp_next_to "$SYSCTL_FILE")
printf '# Written by redis-migration: settings Redis warns about at startup.\nvm.overcommit_memory = 1\nnet.core.somaxconn = %s\n' \
    "$SOMAXCONN" >"$TMP"
install_file "$TMP" "$SYSCTL_FILE" root:root 0644 && say "kernel: wrote $SYSCTL_FILE"
if ! sysctl -q -p "$SYSCTL_FILE" >/dev/null 2>&1; then
    note "sysctl not applied now (read-only /proc/sys?); persisted for next boot"
fi

# systemd-tmpfiles writes these at boot, before network.target (so before Redis starts).
TMP=$(temp_next_to "$THP_TMPFILES")
printf '# Written by redis-migration: Redis wants transparent huge pages off.\nw /sys/kernel/mm/transparent_hugepage/enabled - - - - never\nw /sys/kernel/mm/transparent_hugepage/defrag - - - - never\n' >"$TMP"
install_file "$TMP" "$THP_TMPFILES" root:root 0644 && say "kernel: wrote $THP_TMPFILES"
THP_APPLIED=true
for knob in enabled defrag; do
    path=/sys/kernel/mm/transparent_hugepage/$knob
    if [ -e "$path" ]; then
        { [ -w "$path" ] && echo never >"$path"; } 2>/dev/null || THP_APPLIED=false
    else
        THP_APPLIED=false
    fi
done
[ "$THP_APPLIED" = true ] || note "THP not changed now (read-only /sys?); set at next boot"

# ---------------------------------------------------------------------------- directories

for dir in "$DATA_DIR" "$LOG_DIR" "$(dirname "$CONFIG_FILE")"; do
    mkdir -p "$dir" || fail ConfigWriteFailed "cannot create $dir"
done
if ! chown "$SERVICE_USER:$SERVICE_USER" "$DATA_DIR" "$LOG_DIR" || ! chmod 0750 "$DATA_DIR" "$LOG_DIR"; then
    fail ConfigWriteFailed "cannot set owner/mode of $DATA_DIR and $LOG_DIR"
fi
[ -f "$LOG_DIR/redis.log" ] && chown "$SERVICE_USER:$SERVICE_USER" "$LOG_DIR/redis.log"

# ---------------------------------------------------------------------------- the admin credential

# Generated here, once; never sent, never printed. Redis gets only its SHA-256.
if [ ! -s "$ADMIN_SECRET_FILE" ]; then
    ADMIN_TMP=$(mktemp "$STATE_DIR/.admin.XXXXXX") || fail ConfigWriteFailed "cannot create the admin credential"
    if ! chmod 0600 "$ADMIN_TMP" || ! chown root:root "$ADMIN_TMP"; then
        fail ConfigWriteFailed "cannot protect the admin credential"
    fi
    # 64 random bytes, alphanumerics kept (about 80): no early-closing pipe for pipefail to trip on.
    ADMIN_RANDOM=$(head -c 64 /dev/urandom | base64 -w 0 | tr -dc 'A-Za-z0-9')
    [ "${#ADMIN_RANDOM}" -ge 40 ] || fail ConfigWriteFailed "cannot generate the admin credential"
    printf '%s' "${ADMIN_RANDOM:0:40}" >"$ADMIN_TMP" || fail ConfigWriteFailed "cannot write the admin credential"
    ADMIN_RANDOM=""
    mv -f "$ADMIN_TMP" "$ADMIN_SECRET_FILE" || fail ConfigWriteFailed "cannot store the admin credential"
    CHANGED=true
    say "admin: created the host-local admin credential (root only)"
fi
ADMIN_SHA256=$(sha256sum "$ADMIN_SECRET_FILE" | cut -d ' ' -f 1)

# ---------------------------------------------------------------------------- existing data

# A Redis this workflow did not configure may hold data in dump.rdb only (appendonly no). Redis 7
# restarted on our config (appendonly yes) would start from a new, empty AOF and ignore it, and
# the next save would overwrite it. So the data goes into an AOF first, in the running server.
REDIS_ACCESS=$BEFORE_ACCESS
if [ "$FACT_OURS" = false ] && [ "$FACT_ACTIVE" != active ] && [ "$FACT_RDB" = true ] && [ "$FACT_AOF" = false ]; then
    say "data: starting $SERVICE on its own config to load its dump.rdb"
    systemctl start "$SERVICE" >>"$INSTALL_LOG" 2>&1 ||
        fail TakeoverFailed "$SERVICE did not start on its own config to load dump.rdb; config left as it was"
    CHANGED=true
    printf '%s\n' "$FACT_CONFIG_SHA" >"$STARTED_CONFIG_FILE"
    TAKEOVER="rdb-loaded"
    EXISTING_PORTS=$(listen_ports_of "$(service_main_pid)")
    if [ -z "$EXISTING_PORTS" ] || ! wait_answering "${EXISTING_PORTS%% *}" 240 || ! redis_connect "${EXISTING_PORTS%% *}"; then
        fail TakeoverFailed "$SERVICE started on its own config but does not answer on 127.0.0.1 (ports: ${EXISTING_PORTS:-none})"
    fi
    if [ "$REDIS_ACCESS" = locked ]; then
        systemctl stop "$SERVICE" >>"$INSTALL_LOG" 2>&1
        rm -f "$STARTED_CONFIG_FILE"
        fail ExistingRedisLocked "the $SERVICE that holds dump.rdb requires a password this host does not have; stopped again, config left as it was"
    fi
fi
if [ "$REDIS_ACCESS" = none ] || [ "$REDIS_ACCESS" = admin ]; then
    keyspace_counts
    if [ "$KEYS_TOTAL" -gt 0 ] && [ "$(info_field "$(redis_cmd INFO persistence)" aof_enabled)" != 1 ]; then
        [ "$REDIS_ACCESS" = none ] ||
            fail TakeoverFailed "the running Redis holds $KEYS_TOTAL keys with its AOF off, and the admin user may not switch it on"
        say "data: switching the AOF on in the running Redis ($KEYS_TOTAL keys)"
        switch_aof_on || fail TakeoverFailed "$DATA_PROBLEM; config left as it was"
        CHANGED=true
        TAKEOVER="${TAKEOVER:-aof-switched-on}"
    fi
    keyspace_counts
    KEYS_BEFORE=$KEYS_TOTAL EXPIRES_BEFORE=$EXPIRES_TOTAL
fi

# ---------------------------------------------------------------------------- config

TMP=$(temp_next_to "$CONFIG_FILE")
cat >"$TMP" <<EOF_CONFIG
# Written by redis-migration. Changes here are overwritten by the next install run;
# the file this one replaced is kept as $(basename "$CONFIG_FILE").previous.
port $PORT
bind $BIND
protected-mode yes
# Authentication: the default user with the SHA-256 of the password (never the password).
user default on #$PASSWORD_SHA256 ~* &* +@all
# This host's own admin user (inspection, digest, revert): reads keys, never writes them.
user $ADMIN_USER on #$ADMIN_SHA256 $ADMIN_ACL
maxmemory $MAXMEMORY
maxmemory-policy $MAXMEMORY_POLICY
save 300 1
appendonly yes
appendfsync everysec
dir $DATA_DIR
logfile $LOG_DIR/redis.log
pidfile $PIDFILE
daemonize no
supervised systemd
EOF_CONFIG
CONFIG_CHANGED=false
if install_file "$TMP" "$CONFIG_FILE" "$SERVICE_USER:$SERVICE_USER" 0640; then
    CONFIG_CHANGED=true
    say "config: wrote $CONFIG_FILE"
fi
CONFIG_SHA256=$(sha256_of "$CONFIG_FILE")

# ---------------------------------------------------------------------------- limits

# The unit's resource limits: memory (MemoryHigh throttles and reclaims, MemoryMax is the hard
# bound, enforced inside Redis's cgroup), CPU and IO weights below the co-tenants', and an OOM
# score that makes the kernel's OOM killer choose Redis first. systemd.resource-control(5),
# systemd.exec(5): https://man7.org/linux/man-pages/man5/systemd.resource-control.5.html
if [ -n "$LIMITS_GIVEN" ]; then
    LIMITS_FILE=$(limits_dropin)
    mkdir -p "$(dirname "$LIMITS_FILE")" || fail ConfigWriteFailed "cannot create $(dirname "$LIMITS_FILE")"
    TMP=$(temp_next_to "$LIMITS_FILE")
    printf '# Written by redis-migration: Redis yields to the services it shares this instance with\n# (docs/operations.md, "Sharing the instance"); the run'"'"'s revert puts back what was here.\n[Service]\nMemoryAccounting=yes\nMemoryHigh=%s\nMemoryMax=%s\nCPUWeight=%s\nIOWeight=%s\nOOMScoreAdjust=%s\n' \
        "$MEMORY_HIGH" "$MEMORY_MAX" "$CPU_WEIGHT" "$IO_WEIGHT" "$OOM_SCORE_ADJUST" >"$TMP"
    if install_file "$TMP" "$LIMITS_FILE" root:root 0644; then
        LIMITS_CHANGED=true
        say "limits: wrote $LIMITS_FILE"
        systemctl daemon-reload >>"$INSTALL_LOG" 2>&1 || fail ServiceFailedToStart "systemctl daemon-reload failed"
    fi
fi

# ---------------------------------------------------------------------------- service

if [ "$(systemctl is-enabled "$SERVICE" 2>/dev/null)" != enabled ]; then
    systemctl enable "$SERVICE" >>"$INSTALL_LOG" 2>&1 || fail ServiceFailedToStart "systemctl enable $SERVICE failed"
    CHANGED=true
fi

STARTED=false
if [ "$CONFIG_CHANGED" = true ] || [ "$SERVER_CHANGED" = true ] || [ "$LIMITS_CHANGED" = true ]; then
    say "service: restarting $SERVICE"
    systemctl restart "$SERVICE" >>"$INSTALL_LOG" 2>&1 ||
        fail ServiceFailedToStart "systemctl restart $SERVICE failed: $(tail -c 300 "$LOG_DIR/redis.log" 2>/dev/null | tr '\n' ' ')"
    CHANGED=true
    STARTED=true
elif ! systemctl is-active --quiet "$SERVICE"; then
    say "service: starting $SERVICE"
    systemctl start "$SERVICE" >>"$INSTALL_LOG" 2>&1 ||
        fail ServiceFailedToStart "systemctl start $SERVICE failed: $(tail -c 300 "$LOG_DIR/redis.log" 2>/dev/null | tr '\n' ' ')"
    CHANGED=true
    STARTED=true
else
    say "service: $SERVICE unchanged, left running"
fi
printf '%s\n' "$SERVER_STAMP" >"$STATE_DIR/server"
# Which config the running server was started from: the revert restarts only when it differs.
[ "$STARTED" = true ] && printf '%s\n' "$CONFIG_SHA256" >"$STARTED_CONFIG_FILE"

# Bounded wait (240 x 0.5 s: loading a large AOF takes a while) for the server to answer on
# loopback. Any reply counts as an answer; NOAUTH is the reply we want.
wait_answering "$PORT" 240
REPLY=$ANSWER
SERVICE_STATE=$(systemctl is-active "$SERVICE" 2>/dev/null)
SERVICE_STATE=${SERVICE_STATE:-unknown}
[ -n "$REPLY" ] || fail ServiceFailedToStart "$SERVICE did not answer on 127.0.0.1:$PORT after 240 attempts (service: $SERVICE_STATE)"
[ "$SERVICE_STATE" = active ] || fail ServiceFailedToStart "$SERVICE answers but is $SERVICE_STATE"
case "$REPLY" in
    *NOAUTH*) say "auth: unauthenticated PING refused (NOAUTH)" ;;
    *) fail AuthNotEnforced "unauthenticated PING on 127.0.0.1:$PORT was not refused" ;;
esac

# Every key the server held before the restart is back (keys whose TTL ran out excepted).
if redis_connect "$PORT" && [ "$REDIS_ACCESS" = admin ] && keyspace_counts; then
    KEYS_AFTER=$KEYS_TOTAL
    if [ -n "$KEYS_BEFORE" ] && [ "$KEYS_AFTER" -lt $((KEYS_BEFORE - EXPIRES_BEFORE)) ]; then
        fail DataLoss "$KEYS_BEFORE keys before the restart, $KEYS_AFTER after"
    fi
elif [ -n "$KEYS_BEFORE" ]; then
    fail DataLoss "the admin user cannot count the keys after the restart ($KEYS_BEFORE before)"
fi

MESSAGE="$SERVER_NAME $SERVER_VERSION on port $PORT"
[ -n "$TAKEOVER" ] && MESSAGE="$MESSAGE; existing data taken over ($TAKEOVER, $KEYS_BEFORE keys before, $KEYS_AFTER after)"
if [ "$CHANGED" = true ]; then MESSAGE="$MESSAGE configured"; else MESSAGE="$MESSAGE already as requested; nothing changed"; fi
MESSAGE="$MESSAGE$NOTES"
print_result true "" "$MESSAGE"
exit 0
