#!/usr/bin/env bash
# Reads the instance Redis shares, for the bake: memory, swap, CPUs, load, swap counters, memory,
# IO and CPU pressure (PSI), and each co-tenant service (--co-tenant UNIT, repeated: active or not,
# main pid, restarts, when it last started, resident memory). Changes nothing and takes no lock, so
# it never waits behind an install or a backup: the bake reads the instance every minute.
#
# Sent through SSM Run Command (`bash -s -- ARGS <<'READ_HOST_HEALTH_SCRIPT'`), with host/common.sh
# and host/machine_facts.sh in front. No secret is given or read.
#
# Output: always, as the last line of stdout:
#   REDIS_HOST_HEALTH {"ok":...,"error":...,"message":...,"machine":{...},"coTenants":[...]}
#   (see redis_migration/watch/host_health.py)

set -uo pipefail
export LC_ALL=C

RESULT_PRINTED=false
MACHINE_JSON=null
CO_TENANTS_JSON="[]"
CO_TENANTS=""

# (say, json_string, json_or_null, fail, need_value, on_exit: common.sh; the facts: machine_facts.sh)
print_result() {
    local ok=$1 error=$2 message=$3
    RESULT_PRINTED=true
    printf 'REDIS_HOST_HEALTH {"ok":%s,"error":%s,"message":%s,"machine":%s,"coTenants":%s}\n' \
        "$ok" "$(json_or_null "$error")" "$(json_string "${message:0:300}")" "$MACHINE_JSON" "$CO_TENANTS_JSON"
}

# shellcheck disable=SC2317  # invoked by on_exit (common.sh)
cleanup() { :; }
trap on_exit EXIT

while [ "$#" -gt 0 ]; do
    case "$1" in
        --co-tenant)
            need_value "$@"
            [[ "$2" =~ $CO_TENANT_UNIT_RE ]] || fail BadArgument "--co-tenant takes a systemd .service unit name"
            CO_TENANTS="$CO_TENANTS $2"
            shift 2
            ;;
        *) fail BadArgument "unknown argument (value not shown)" ;;
    esac
done

collect_machine_facts
# Every unit the preflight found is named: one that is gone now is reported (not-found), not skipped.
collect_co_tenants "$CO_TENANTS" ""
print_result true "" "read; nothing was changed"
exit 0
