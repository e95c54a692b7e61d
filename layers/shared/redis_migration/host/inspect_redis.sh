#!/usr/bin/env bash
# Reports this host's Redis as it is, changing nothing: platform, package, binary and version,
# config file (SHA-256, ours or not), service (enabled, active, main pid, listening ports), who
# holds a requested port, memory, the limits of Redis's unit, and, when Redis answers on loopback
# (as our admin user, or without auth for a Redis that has none), its memory, persistence, key
# counts and a canonical digest of its data (up to --digest-max-keys keys). Also the instance as a
# whole (memory, swap, CPUs, load, PSI) and each co-tenant service (--co-tenant UNIT: named, so
# reported even when absent; --co-tenant-if-present UNIT: reported only when the host has it).
#
# Sent through SSM Run Command like the install (`bash -s -- ARGS <<'INSPECT_REDIS_SCRIPT'`), with
# host/common.sh, host/redis_facts.sh and host/machine_facts.sh in front. No secret is given or printed: the admin
# credential, when the install created it, is read from its root-only file on the host.
#
# Output: at most a few lines, then always, as the last line of stdout:
#   REDIS_HOST_STATE {"ok":...,"error":...,"message":...,"state":{...}}   (state: see
#   redis_migration/host/state.py, HostState)

set -uo pipefail
export LC_ALL=C

PORT=6379
DIGEST_MAX_KEYS=100000
OS_RELEASE_FILE="${OS_RELEASE_FILE:-/etc/os-release}"
LOCK_FILE=/run/lock/redis-migration.lock
RESULT_PRINTED=false
FACTS_JSON=null
CO_TENANTS=""
CO_TENANTS_IF_PRESENT=""

# (say, json_string, json_or_null, fail, need_value, on_exit: common.sh; the facts: redis_facts.sh)
print_result() {
    local ok=$1 error=$2 message=$3
    RESULT_PRINTED=true
    printf 'REDIS_HOST_STATE {"ok":%s,"error":%s,"message":%s,"state":%s}\n' \
        "$ok" "$(json_or_null "$error")" "$(json_string "${message:0:300}")" "$FACTS_JSON"
}

# shellcheck disable=SC2317  # invoked by on_exit (common.sh)
cleanup() { :; }
trap on_exit EXIT

while [ "$#" -gt 0 ]; do
    case "$1" in
        --port) need_value "$@"; PORT=$2; shift 2 ;;
        --digest-max-keys) need_value "$@"; DIGEST_MAX_KEYS=$2; shift 2 ;;
        --co-tenant | --co-tenant-if-present)
            need_value "$@"
            [[ "$2" =~ $CO_TENANT_UNIT_RE ]] || fail BadArgument "$1 takes a systemd .service unit name"
            if [ "$1" = --co-tenant ]; then CO_TENANTS="$CO_TENANTS $2"; else CO_TENANTS_IF_PRESENT="$CO_TENANTS_IF_PRESENT $2"; fi
            shift 2
            ;;
        *) fail BadArgument "unknown argument (value not shown)" ;;
    esac
done
if ! [[ "$PORT" =~ ^[0-9]{1,5}$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    fail BadArgument "--port must be 1-65535"
fi
[[ "$DIGEST_MAX_KEYS" =~ ^[0-9]{1,9}$ ]] || fail BadArgument "--digest-max-keys must be a number"
[ "$(id -u)" -eq 0 ] || fail NotRoot "must run as root (SSM Run Command does)"

# A shared lock: an install, backup or revert in progress finishes first, so the facts are not
# read half-way through a change. Read-only callers never wait on each other.
mkdir -p "$(dirname "$LOCK_FILE")" 2>/dev/null
exec 9>>"$LOCK_FILE"
flock -s -w 120 9 || fail Busy "an install, backup or revert still holds $LOCK_FILE after 120 s"

platform_table
collect_host_facts "$PORT" "$DIGEST_MAX_KEYS"
collect_machine_facts
collect_co_tenants "$CO_TENANTS" "$CO_TENANTS_IF_PRESENT"
FACTS_JSON="${FACTS_JSON%\}},\"machine\":$MACHINE_JSON,\"coTenants\":$CO_TENANTS_JSON}"
print_result true "" "inspected; nothing was changed"
exit 0
