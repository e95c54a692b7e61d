# Shared by inspect_redis.sh and read_host_health.sh (sent after common.sh, in front of each; see
# redis_migration/host/scripts.py): the instance as a whole and the services Redis shares it with,
# as JSON. Functions only; nothing here changes the host, and nothing waits on a lock.
#
# Sources, all read-only: /proc/meminfo, /proc/vmstat (pswpin, pswpout), /proc/loadavg,
# /proc/uptime, /proc/pressure/{memory,io,cpu} (PSI: https://docs.kernel.org/accounting/psi.html;
# absent, or unreadable with EOPNOTSUPP, when the kernel was built or booted without it), nproc,
# `systemctl show` of each co-tenant unit, its cgroup's processes and their VmRSS.

CO_TENANT_UNIT_RE='^[A-Za-z0-9:_.@-]{1,248}\.service$'

meminfo_bytes() {
    # /proc/meminfo field $1 (kB) in bytes; empty when absent.
    awk -v key="$1:" '$1 == key { printf "%.0f", $2 * 1024; exit }' /proc/meminfo 2>/dev/null
}

number_or_null() {
    if [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then printf '%s' "$1"; else printf 'null'; fi
}

# One /proc/pressure file as {"someAvg10":..,"someAvg60":..,"someTotalUs":..,"fullAvg10":..}; null
# when the kernel has no PSI.
pressure_json() {
    local file=/proc/pressure/$1 text some full
    text=$(cat "$file" 2>/dev/null) || { printf 'null'; return 0; }
    [ -n "$text" ] || { printf 'null'; return 0; }
    some=$(sed -n 's/^some avg10=\([0-9.]*\) avg60=\([0-9.]*\) avg300=[0-9.]* total=\([0-9]*\)$/\1 \2 \3/p' <<<"$text")
    full=$(sed -n 's/^full avg10=\([0-9.]*\) avg60=\([0-9.]*\) avg300=[0-9.]* total=\([0-9]*\)$/\1 \2 \3/p' <<<"$text")
    # shellcheck disable=SC2086  # word splitting of the three numbers is the point
    set -- $some $full
    printf '{"someAvg10":%s,"someAvg60":%s,"someTotalUs":%s,"fullAvg10":%s,"fullAvg60":%s,"fullTotalUs":%s}' \
        "$(number_or_null "${1:-}")" "$(number_or_null "${2:-}")" "$(number_or_null "${3:-}")" \
        "$(number_or_null "${4:-}")" "$(number_or_null "${5:-}")" "$(number_or_null "${6:-}")"
}

# The instance: memory, swap, CPUs, load, swap counters, uptime, PSI. Sets MACHINE_JSON.
collect_machine_facts() {
    local load1 load5 _ uptime swap_in swap_out cpus
    read -r load1 load5 _ </proc/loadavg 2>/dev/null
    read -r uptime _ </proc/uptime 2>/dev/null
    swap_in=$(awk '$1 == "pswpin" { print $2 }' /proc/vmstat 2>/dev/null)
    swap_out=$(awk '$1 == "pswpout" { print $2 }' /proc/vmstat 2>/dev/null)
    cpus=$(nproc 2>/dev/null)
    MACHINE_JSON=$(printf '{"memTotalBytes":%s,"memAvailableBytes":%s,"swapTotalBytes":%s,"swapFreeBytes":%s,"cpus":%s,"load1":%s,"load5":%s,"swapInPages":%s,"swapOutPages":%s,"uptimeSeconds":%s,"memoryPressure":%s,"ioPressure":%s,"cpuPressure":%s}' \
        "$(number_or_null "$(meminfo_bytes MemTotal)")" "$(number_or_null "$(meminfo_bytes MemAvailable)")" \
        "$(number_or_null "$(meminfo_bytes SwapTotal)")" "$(number_or_null "$(meminfo_bytes SwapFree)")" \
        "$(number_or_null "$cpus")" "$(number_or_null "${load1:-}")" "$(number_or_null "${load5:-}")" \
        "$(number_or_null "$swap_in")" "$(number_or_null "$swap_out")" "$(number_or_null "${uptime:-}")" \
        "$(pressure_json memory)" "$(pressure_json io)" "$(pressure_json cpu)")
}

# Value of property $1 in `systemctl show` output $2 (KEY=VALUE lines, in systemd's own order).
show_value() {
    sed -n "s/^$1=//p" <<<"$2" | head -n 1
}

weight_or_null() {
    # CPUWeight/IOWeight as systemctl show prints them: a number 1-10000, or "[not set]" (older
    # systemd: 18446744073709551615), "idle": null (systemd's default, 100).
    if [[ "$1" =~ ^[0-9]{1,5}$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 10000 ]; then printf '%s' "$1"; else printf 'null'; fi
}

# The pids of a unit: its cgroup's processes (where the cgroup tree is visible), else its main pid.
unit_pids() {
    local cgroup=$1 main_pid=$2 root
    if [ -n "$cgroup" ]; then
        for root in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup/memory /sys/fs/cgroup/pids; do
            if [ -r "$root$cgroup/cgroup.procs" ]; then
                cat "$root$cgroup/cgroup.procs" 2>/dev/null
                return 0
            fi
        done
    fi
    [ -n "$main_pid" ] && [ "$main_pid" != 0 ] && printf '%s\n' "$main_pid"
}

# One co-tenant as JSON on stdout; nothing for an optional unit that is not on the host.
co_tenant_json() {
    local unit=$1 required=$2 show load active pid restarts entered cgroup cpu_weight io_weight
    local rss=0 count=0 p kb oom=""
    show=$(systemctl show -p LoadState -p ActiveState -p MainPID -p NRestarts -p ActiveEnterTimestampMonotonic \
        -p ControlGroup -p CPUWeight -p IOWeight "$unit" 2>/dev/null)
    load=$(show_value LoadState "$show")
    [ "$required" = true ] || [ "$load" = loaded ] || return 0
    active=$(show_value ActiveState "$show")
    pid=$(show_value MainPID "$show")
    [[ "$pid" =~ ^[1-9][0-9]*$ ]] || pid=""
    restarts=$(show_value NRestarts "$show")
    entered=$(show_value ActiveEnterTimestampMonotonic "$show")
    cgroup=$(show_value ControlGroup "$show")
    cpu_weight=$(weight_or_null "$(show_value CPUWeight "$show")")
    io_weight=$(weight_or_null "$(show_value IOWeight "$show")")
    if [ "$active" = active ]; then
        for p in $(unit_pids "$cgroup" "$pid"); do
            kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
            [[ "$kb" =~ ^[0-9]+$ ]] || continue
            rss=$((rss + kb * 1024))
            count=$((count + 1))
        done
        [ -n "$pid" ] && oom=$(cat "/proc/$pid/oom_score_adj" 2>/dev/null)
    fi
    printf '{"unit":%s,"loadState":%s,"activeState":%s,"mainPid":%s,"nRestarts":%s,"activeEnterUs":%s,"rssBytes":%s,"processes":%s,"cpuWeight":%s,"ioWeight":%s,"oomScoreAdj":%s,"required":%s}' \
        "$(json_string "$unit")" "$(json_or_null "$load")" "$(json_or_null "$active")" "${pid:-null}" \
        "$(number_or_null "$restarts")" "$(number_or_null "$entered")" \
        "$([ "$count" -gt 0 ] && echo "$rss" || echo null)" "$count" "$cpu_weight" "$io_weight" \
        "$(number_or_null "$oom")" "$required"
}

# Every co-tenant into CO_TENANTS_JSON (a JSON array): $1 the named units (space-separated), $2
# those taken when present.
collect_co_tenants() {
    local named=$1 optional=$2 unit item items=""
    for unit in $named; do
        item=$(co_tenant_json "$unit" true)
        items="$items${items:+,}$item"
    done
    for unit in $optional; do
        item=$(co_tenant_json "$unit" false)
        [ -n "$item" ] && items="$items${items:+,}$item"
    done
    CO_TENANTS_JSON="[$items]"
}
