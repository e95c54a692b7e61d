#!/usr/bin/env bash
# Points systemd services of this host (--unit, e.g. the campaign's Node.js worker) at the
# self-hosted Redis, or puts them back: the same managed keys the Lambda functions get, written
# into each unit's environment file (the last EnvironmentFile= systemd reads for it, so ours win),
# then the running units restarted and checked. The consistent data mode stops them first, for
# the freeze, so that nothing writes to ElastiCache while the last changes are copied.
#
#   --action stop    --run-id ID --unit U [--unit U ...] [--unset KEY ...]
#   --action switch  --run-id ID --unit U [--unit U ...] --set KEY=VALUE ... [--unset KEY ...]
#   --action restore --run-id ID
#
# Only the managed keys change: the last line that assigns a --set key is replaced (the key is
# appended when no line assigns it), every line that assigns an --unset key is removed, and every
# other byte of the file stays as it was (owner and mode too; the file is replaced atomically).
#
# Before its first change for a run id (a stop or a switch), each environment file is recorded
# under /var/lib/redis-migration/runs/ID/services/<file>/ (a copy of the file and whether each
# unit was running; the switch adds what it sets, the stop which units it stopped). A retried
# stop or switch finds its record and changes only what is not done yet.
#
# The stop changes no file: it stops the running units and checks that they stopped (a second
# stop changes nothing). The switch after it starts the units the stop stopped, with the new
# values, and checks they run with them; a unit that was stopped before the run stays stopped.
#
# The restore puts back the recorded file exactly when it still holds what the switch wrote; when
# someone changed it since, only the keys that still hold the switch's values are put back and the
# others are reported, not overwritten (a file only stopped, never switched, is left as it is). A
# unit that was running before the run is restarted (started again if it died or was stopped), one
# that was stopped is left stopped. A second restore changes nothing.
#
# Refused before any change, naming the unit: a unit systemd does not know, a unit without an
# EnvironmentFile= (add one, e.g. with a drop-in), an environment file that does not exist, and a
# file that holds a Redis password in plain text (the service is to read REDIS_PASSWORD_SECRET_ARN).
#
# Secrets: the values given are a host, a port and a secret's ARN (checked: no other characters
# pass), never a password; no value of the environment files is printed except the previous
# values of REDIS_HOST, REDIS_PORT and REDIS_PASSWORD_SECRET_ARN. The records are root-only.
#
# Sent through SSM Run Command like the install (`bash -s -- ARGS <<'HOST_SERVICES_SCRIPT'`), with
# host/common.sh in front. Output: short progress lines, then always, as the last line of stdout:
#   REDIS_SERVICES_RESULT {"ok":...,"action":...,"runId":...,"changed":...,"recorded":...,
#                          "refused":...,"error":...,"message":...,"files":[...]}
# files: {"envFile","units":[{"unit","active","restarted","started","stopped"}],"fileChanged",
#         "outcome","keys":{KEY: "set"|"unchanged"|"removed"|"restored"|"changedByOthers"},
#         "before":{KEY: previous value|null}}

set -uo pipefail
export LC_ALL=C
umask 077

ACTION=""
RUN_ID=""
UNITS=()
SETS=()
UNSETS=()
SETTLE_SECONDS=3
STATE_DIR=/var/lib/redis-migration
RUNS_DIR=$STATE_DIR/runs
LOCK_FILE=/run/lock/redis-migration.lock
LOG=/var/log/redis-migration-services.log
# Keys shown in the result with their previous value: a host, a port, an ARN (never a password).
SHOWN_KEYS=" REDIS_HOST REDIS_PORT REDIS_PASSWORD_SECRET_ARN "

CHANGED=false
RECORDED=false
REFUSED=false
RESULT_PRINTED=false
FILES_JSON=""
TMP=""

# (say, json_string, json_or_null, fail, need_value, on_exit: common.sh)
print_result() {
    local ok=$1 error=$2 message=$3
    RESULT_PRINTED=true
    printf 'REDIS_SERVICES_RESULT {"ok":%s,"action":%s,"runId":%s,"changed":%s,"recorded":%s,"refused":%s,"error":%s,"message":%s,"files":[%s]}\n' \
        "$ok" "$(json_or_null "$ACTION")" "$(json_or_null "$RUN_ID")" "$CHANGED" "$RECORDED" "$REFUSED" \
        "$(json_or_null "$error")" "$(json_string "${message:0:600}")" "$FILES_JSON"
}

# A refusal: nothing was changed on this host.
refuse() {
    REFUSED=true
    fail "$1" "$2"
}

# shellcheck disable=SC2317  # invoked by on_exit (common.sh)
cleanup() {
    [ -n "$TMP" ] && rm -f "$TMP"
    return 0
}
trap on_exit EXIT

KEY_RE='^[A-Za-z_][A-Za-z0-9_]{0,127}$'
VALUE_RE='^[A-Za-z0-9._:/@+=,-]{0,512}$'
UNIT_RE='^[A-Za-z0-9:_.@-]{1,248}\.service$'

while [ "$#" -gt 0 ]; do
    case "$1" in
        --action) need_value "$@"; ACTION=$2; shift 2 ;;
        --run-id) need_value "$@"; RUN_ID=$2; shift 2 ;;
        --unit) need_value "$@"; UNITS+=("$2"); shift 2 ;;
        --set) need_value "$@"; SETS+=("$2"); shift 2 ;;
        --unset) need_value "$@"; UNSETS+=("$2"); shift 2 ;;
        --settle-seconds) need_value "$@"; SETTLE_SECONDS=$2; shift 2 ;;
        *) fail BadArgument "unknown argument (value not shown)" ;;
    esac
done
case "$ACTION" in switch | stop | restore) ;; *) fail BadArgument "--action takes switch, stop or restore" ;; esac
if ! [[ "$RUN_ID" =~ ^[A-Za-z0-9._@+=-]{1,80}$ ]] || [[ "$RUN_ID" =~ ^\.+$ ]]; then
    fail BadArgument "--run-id takes 1-80 letters, digits or . _ @ + = -"
fi
[[ "$SETTLE_SECONDS" =~ ^[0-9]{1,2}$ ]] || fail BadArgument "--settle-seconds must be 0-99"
for unit in "${UNITS[@]}"; do
    [[ "$unit" =~ $UNIT_RE ]] || fail BadArgument "--unit takes a service unit name (name.service)"
done
for pair in "${SETS[@]}"; do
    if ! [[ "${pair%%=*}" =~ $KEY_RE ]] || [[ "$pair" != *=* ]]; then
        fail BadArgument "--set takes KEY=VALUE (key not valid)"
    fi
    [[ "${pair#*=}" =~ $VALUE_RE ]] || fail BadArgument "--set ${pair%%=*}: the value has characters a host, a port or an ARN does not (value not shown)"
done
for key in "${UNSETS[@]}"; do
    [[ "$key" =~ $KEY_RE ]] || fail BadArgument "--unset takes a variable name"
done
if [ "$ACTION" = switch ]; then
    if [ "${#UNITS[@]}" -lt 1 ] || [ "${#UNITS[@]}" -gt 20 ]; then
        fail BadArgument "switch takes 1 to 20 --unit"
    fi
    [ "${#SETS[@]}" -ge 1 ] || fail BadArgument "switch takes at least one --set"
fi
if [ "$ACTION" = stop ]; then
    if [ "${#UNITS[@]}" -lt 1 ] || [ "${#UNITS[@]}" -gt 20 ]; then
        fail BadArgument "stop takes 1 to 20 --unit"
    fi
    [ "${#SETS[@]}" -eq 0 ] || fail BadArgument "stop takes no --set (it changes no file)"
fi
[ "$(id -u)" -eq 0 ] || fail NotRoot "must run as root (SSM Run Command does)"

mkdir -p "$(dirname "$LOCK_FILE")" || fail Busy "cannot create $(dirname "$LOCK_FILE")"
exec 9>"$LOCK_FILE"
flock -w 300 9 || fail Busy "an install, backup, restore or revert still holds $LOCK_FILE after 300 s"
SERVICES_DIR=$RUNS_DIR/$RUN_ID/services

# ---------------------------------------------------------------------------- the files

# The value of the last line of file $1 that assigns $2 (quotes removed), and 0; 1 when none does.
value_of() {
    awk -v key="$2" '
        match($0, /^[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*=/) {
            k = substr($0, RSTART, RLENGTH - 1); gsub(/[ \t]/, "", k)
            if (k == key) { v = substr($0, RSTART + RLENGTH); found = 1 }
        }
        END {
            if (!found) exit 1
            gsub(/^[ \t]+|[ \t\r]+$/, "", v)
            if (v ~ /^".*"$/ || v ~ /^\x27.*\x27$/) v = substr(v, 2, length(v) - 2)
            print v
        }' "$1"
}

# Every line of file $1 that assigns key $2 (verbatim), in order.
lines_of() {
    awk -v key="$2" '
        match($0, /^[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*=/) {
            k = substr($0, RSTART, RLENGTH - 1); gsub(/[ \t]/, "", k)
            if (k == key) print
        }' "$1"
}

# File $1 with the managed keys changed, to stdout. $2: KEY=VALUE lines to set (the last line
# assigning KEY is replaced, KEY=VALUE appended when none does); $3: keys to remove (every line).
# $4: lines to append as they are (the restore's previous lines of removed keys). Nothing else
# changes; a file without a final newline keeps it that way unless something is appended.
edit_file() {
    local source=$1
    # Through the environment, not -v: awk would interpret backslashes in -v values.
    EDIT_SETS=$2 EDIT_UNSETS=$3 EDIT_APPENDS=$4 awk '
        BEGIN {
            sets = ENVIRON["EDIT_SETS"]; unsets = ENVIRON["EDIT_UNSETS"]; appends = ENVIRON["EDIT_APPENDS"]
            n = split(sets, pairs, "\n")
            for (i = 1; i <= n; i++) if (pairs[i] != "") {
                p = index(pairs[i], "="); k = substr(pairs[i], 1, p - 1)
                value[k] = substr(pairs[i], p + 1); order[++count] = k
            }
            m = split(unsets, names, "\n")
            for (i = 1; i <= m; i++) if (names[i] != "") drop[names[i]] = 1
        }
        {
            line[NR] = $0
            if (match($0, /^[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*=/)) {
                k = substr($0, RSTART, RLENGTH - 1); gsub(/[ \t]/, "", k)
                key[NR] = k
                if (k in value) last[k] = NR
            }
        }
        END {
            for (i = 1; i <= NR; i++) {
                k = key[i]
                if (k != "" && (k in drop)) continue
                if (k != "" && (k in value) && last[k] == i) { print k "=" value[k]; continue }
                print line[i]
            }
            for (j = 1; j <= count; j++) if (!(order[j] in last)) print order[j] "=" value[order[j]]
            if (appends != "") printf "%s\n", appends
        }' "$source"
}

# Replace file $2 by file $1 atomically, with the owner and mode of $3 (default: $2).
replace_file() {
    local new=$1 target=$2 like=${3:-$2}
    TMP=$(mktemp "$(dirname "$target")/.$(basename "$target").XXXXXX") || fail WriteFailed "cannot write next to $target"
    if ! cat "$new" >"$TMP" || ! chown --reference="$like" "$TMP" || ! chmod --reference="$like" "$TMP" ||
        ! mv -f "$TMP" "$target"; then
        fail WriteFailed "cannot replace $target"
    fi
    TMP=""
}

# A file that ends without a newline keeps ending so (awk adds one to its last line).
keep_final_newline() {
    local original=$1 edited=$2 appended=$3
    if [ -s "$original" ] && [ -n "$(tail -c 1 "$original")" ] && [ "$appended" = false ]; then
        truncate -s -1 "$edited"
    fi
}

# Variables that hold a Redis password in plain text (the functions' preflight rule).
secret_like() {
    local upper=${1^^}
    case "$upper" in *_ARN | *_SECRET_ID | *_SECRET_NAME | *_PARAMETER | *_PARAM) return 1 ;; esac
    [[ "$upper" == *REDIS* ]] && [[ "$upper" =~ PASS|AUTH|TOKEN|SECRET ]]
}

# ---------------------------------------------------------------------------- the units

unit_active() { systemctl is-active "$1" 2>/dev/null | head -n 1; }

# 0 when unit $1's main process was started with every --set value (read from /proc; never printed).
runs_with_values() {
    local unit=$1 pid pair
    shift
    pid=$(systemctl show -p MainPID --value "$unit" 2>/dev/null | head -n 1)
    [[ "$pid" =~ ^[1-9][0-9]*$ ]] && [ -r "/proc/$pid/environ" ] || return 1
    for pair in "$@"; do
        tr '\0' '\n' <"/proc/$pid/environ" | grep -Fxq -- "$pair" || return 1
    done
    return 0
}

# Restart (or start) unit $1 and wait up to SETTLE_SECONDS for it to stay active.
restart_unit() {
    local verb=$1 unit=$2 waited=0
    say "service: $verb $unit"
    systemctl "$verb" "$unit" >>"$LOG" 2>&1 || return 1
    while [ "$waited" -lt "$SETTLE_SECONDS" ]; do
        sleep 1
        waited=$((waited + 1))
        [ "$(unit_active "$unit")" = active ] || return 1
    done
    [ "$(unit_active "$unit")" = active ]
}

recorded() { sed -n "s/^$1=//p" "$2" | head -n 1; }

json_keys() {
    # {"KEY":"outcome",...} from lines "KEY outcome".
    local out="" key outcome
    while read -r key outcome; do
        [ -n "$key" ] || continue
        out+="${out:+,}$(json_string "$key"):$(json_string "$outcome")"
    done <<<"$1"
    printf '{%s}' "$out"
}

json_before() {
    # The previous values of the shown keys, from the recorded file $1.
    local out="" key value
    for key in $SHOWN_KEYS; do
        if value=$(value_of "$1" "$key"); then
            [[ "$value" =~ $VALUE_RE ]] || value="(not shown)"
            out+="${out:+,}$(json_string "$key"):$(json_string "$value")"
        else
            out+="${out:+,}$(json_string "$key"):null"
        fi
    done
    printf '{%s}' "$out"
}

add_file_json() {
    FILES_JSON+="${FILES_JSON:+,}$1"
}

# ---------------------------------------------------------------------------- switch and stop

# The environment file of each --unit (the last EnvironmentFile= systemd reads for it), grouped:
# ORDER lists the files (resolved), UNITS_OF[file] the units that read it. Refused before any
# change, every problem named at once.
declare -A UNITS_OF=()
ORDER=()
find_env_files() {
    local problems="" unit load files env_file target
    for unit in "${UNITS[@]}"; do
        load=$(systemctl show -p LoadState --value "$unit" 2>/dev/null | head -n 1)
        if [ "$load" != loaded ]; then
            problems+="; $unit: not a unit systemd has loaded (LoadState=${load:-unknown})"
            continue
        fi
        files=$(systemctl show -p EnvironmentFiles --value "$unit" 2>/dev/null)
        env_file=$(printf '%s\n' "$files" | sed -n 's/^\(.*\) (ignore_errors=\(yes\|no\))$/\1/p' | tail -n 1)
        if [ -z "$env_file" ]; then
            problems+="; $unit: has no EnvironmentFile= to write the Redis keys to; add one (a drop-in: systemctl edit $unit, [Service] EnvironmentFile=/etc/default/${unit%.service}) and run again"
            continue
        fi
        if [ ! -f "$env_file" ]; then
            problems+="; $unit: its environment file $env_file does not exist; create it (it may be empty) and run again"
            continue
        fi
        target=$(readlink -f "$env_file")
        local key plaintext=""
        while read -r key; do
            [ -n "$key" ] || continue
            if secret_like "$key" && [[ " ${UNSETS[*]} " != *" $key "* ]]; then
                plaintext+="${plaintext:+, }$key"
            fi
        done < <(awk 'match($0, /^[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*=/) { k = substr($0, RSTART, RLENGTH - 1); gsub(/[ \t]/, "", k); print k }' "$target" | sort -u)
        if [ -n "$plaintext" ]; then
            problems+="; $unit: $env_file holds a Redis password in plain text ($plaintext); make the service read REDIS_PASSWORD_SECRET_ARN, or list the variable to remove"
            continue
        fi
        if [ -z "${UNITS_OF[$target]+x}" ]; then
            ORDER+=("$target")
            UNITS_OF[$target]=$unit
        else
            UNITS_OF[$target]+=" $unit"
        fi
    done
    [ -z "$problems" ] || refuse Refused "${problems#; }; nothing was changed"
    mkdir -p "$SERVICES_DIR" && chmod 0700 "$RUNS_DIR" "$RUNS_DIR/$RUN_ID" "$SERVICES_DIR" 2>/dev/null
}

# The record of file $1 (its path in RECORD), made once per run id before the first change to the
# file or its units (complete or absent): a copy of the file and whether each unit was running.
# The switch adds what it sets (keys) and what it wrote (after); the stop, which units it stopped.
make_record() {
    local target=$1 id unit staging
    id=$(printf '%s' "$target" | sha256sum | cut -c 1-16)
    RECORD=$SERVICES_DIR/$id
    [ -f "$RECORD/state" ] && return 0
    rm -rf "$RECORD"
    staging=$(mktemp -d "$SERVICES_DIR/.record.XXXXXX") || fail RecordFailed "cannot create a record under $SERVICES_DIR"
    cp -p "$target" "$staging/before" || fail RecordFailed "cannot copy $target into the record"
    {
        printf 'ENV_FILE=%s\n' "$target"
        printf 'RECORDED_AT=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        for unit in ${UNITS_OF[$target]}; do printf 'UNIT=%s %s\n' "$unit" "$(unit_active "$unit")"; done
    } >"$staging/state.tmp" || fail RecordFailed "cannot write the record"
    if ! mv "$staging/state.tmp" "$staging/state" || ! mv -T "$staging" "$RECORD"; then
        fail RecordFailed "cannot move the record into place"
    fi
    RECORDED=true
    say "recorded $target before run $RUN_ID"
}

# What unit $2 was when file record $1 was made (active, inactive, ...; empty: not recorded).
recorded_state() { awk -v unit="UNIT=$2" '$1 == unit { print $2; exit }' "$1/state"; }

# 0 when the stop of this run stopped unit $2 of record $1.
stopped_by_run() { [ -f "$1/stopped" ] && grep -Fxq -- "$2" "$1/stopped"; }

switch() {
    local target pair
    find_env_files
    local sets_text unsets_text
    sets_text=$(printf '%s\n' "${SETS[@]}")
    unsets_text=$(printf '%s\n' "${UNSETS[@]}")
    for target in "${ORDER[@]}"; do
        local record new appended file_changed=false keys_text=""
        make_record "$target"
        record=$RECORD
        # What this switch sets, before its first change (a record the stop made has none yet).
        if [ ! -f "$record/keys" ]; then
            if ! { printf '%s\n' "${SETS[@]}" | sed 's/^/set /'; [ "${#UNSETS[@]}" -eq 0 ] || printf 'unset %s\n' "${UNSETS[@]}"; } >"$record/keys.tmp" ||
                ! mv "$record/keys.tmp" "$record/keys"; then
                fail RecordFailed "cannot record the keys to set"
            fi
        fi
        for pair in "${SETS[@]}"; do
            if [ "$(value_of "$target" "${pair%%=*}")" = "${pair#*=}" ] && value_of "$target" "${pair%%=*}" >/dev/null; then
                keys_text+="${pair%%=*} unchanged"$'\n'
            else
                keys_text+="${pair%%=*} set"$'\n'
            fi
        done
        for key in "${UNSETS[@]}"; do
            if value_of "$target" "$key" >/dev/null; then keys_text+="$key removed"$'\n'; else keys_text+="$key unchanged"$'\n'; fi
        done
        new=$(mktemp) || fail WriteFailed "cannot create a temporary file"
        TMP=$new
        edit_file "$target" "$sets_text" "$unsets_text" "" >"$new" || fail WriteFailed "cannot edit $target"
        appended=false
        for pair in "${SETS[@]}"; do value_of "$target" "${pair%%=*}" >/dev/null || appended=true; done
        keep_final_newline "$target" "$new" "$appended"
        if ! cmp -s "$new" "$target"; then
            replace_file "$new" "$target"
            cp "$target" "$record/after" || fail RecordFailed "cannot record what was written"
            file_changed=true
            CHANGED=true
            say "env: wrote the Redis keys into $target"
        elif [ ! -f "$record/after" ]; then
            cp "$target" "$record/after" || fail RecordFailed "cannot record what was written"
        fi
        rm -f "$new"
        TMP=""

        local units_json="" unit active restarted started
        for unit in ${UNITS_OF[$target]}; do
            active=$(unit_active "$unit")
            restarted=false
            started=false
            if [ "$active" != active ] && [ "$(recorded_state "$record" "$unit")" = active ] && stopped_by_run "$record" "$unit"; then
                # Stopped by this run for the freeze: it comes back only on the new values.
                restart_unit start "$unit" || fail RestartFailed "$unit did not stay active when started with the new values (see $LOG)"
                runs_with_values "$unit" "${SETS[@]}" || fail ServiceNotSwitched "$unit runs without the new values after its start (does its ExecStart override them?)"
                started=true
                CHANGED=true
                active=$(unit_active "$unit")
            elif [ "$active" = active ] && { [ "$file_changed" = true ] || ! runs_with_values "$unit" "${SETS[@]}"; }; then
                restart_unit restart "$unit" || fail RestartFailed "$unit did not stay active after its restart with the new values (see $LOG)"
                runs_with_values "$unit" "${SETS[@]}" || fail ServiceNotSwitched "$unit runs without the new values after its restart (does its ExecStart override them?)"
                restarted=true
                CHANGED=true
                active=$(unit_active "$unit")
            elif [ "$active" != active ]; then
                say "service: $unit is $active; it takes the new values when it starts"
            fi
            units_json+="${units_json:+,}{\"unit\":$(json_string "$unit"),\"active\":$(json_string "$active"),\"restarted\":$restarted,\"started\":$started,\"stopped\":false}"
        done
        add_file_json "{\"envFile\":$(json_string "$target"),\"units\":[$units_json],\"fileChanged\":$file_changed,\"outcome\":$(json_string "$([ "$file_changed" = true ] && echo switched || echo unchanged)"),\"keys\":$(json_keys "$keys_text"),\"before\":$(json_before "$record/before")}"
    done
}

# The freeze of the consistent mode: record the files and units as the switch does, then stop
# the running units (marked in the record first, so the switch starts them on the new values and
# the restore on the old ones). The files are not changed.
stop_services() {
    local target record unit active stopped units_json
    find_env_files
    for target in "${ORDER[@]}"; do
        make_record "$target"
        record=$RECORD
        units_json=""
        for unit in ${UNITS_OF[$target]}; do
            active=$(unit_active "$unit")
            stopped=false
            if [ "$active" != inactive ] && [ "$active" != failed ]; then
                if ! stopped_by_run "$record" "$unit"; then
                    printf '%s\n' "$unit" >>"$record/stopped" || fail RecordFailed "cannot record the stop of $unit"
                fi
                say "service: stop $unit"
                systemctl stop "$unit" >>"$LOG" 2>&1 || fail StopFailed "systemctl stop $unit failed (see $LOG)"
                active=$(unit_active "$unit")
                case "$active" in
                    inactive | failed) ;;
                    *) fail StopFailed "$unit is still $active after its stop (see $LOG)" ;;
                esac
                stopped=true
                CHANGED=true
            fi
            units_json+="${units_json:+,}{\"unit\":$(json_string "$unit"),\"active\":$(json_string "$active"),\"restarted\":false,\"started\":false,\"stopped\":$stopped}"
        done
        add_file_json "{\"envFile\":$(json_string "$target"),\"units\":[$units_json],\"fileChanged\":false,\"outcome\":\"unchanged\",\"keys\":{},\"before\":$(json_before "$record/before")}"
    done
}

# ---------------------------------------------------------------------------- restore

restore_one() {
    local record=$1 target outcome file_changed=false keys_text="" sets="" unsets="" appends="" new
    target=$(recorded ENV_FILE "$record/state")
    [ -n "$target" ] || fail RestoreFailed "the record $record names no file"
    RECORDED=true
    if [ ! -e "$target" ]; then
        # Removed since: the whole file comes back as it was.
        cp -p "$record/before" "$target" || fail WriteFailed "cannot put $target back"
        file_changed=true
        outcome=restored
    elif cmp -s "$target" "$record/before"; then
        outcome=unchanged
    elif [ ! -f "$record/keys" ]; then
        # Only stopped by this run, never switched: what changed in the file since is not ours.
        outcome=unchanged
    elif [ -f "$record/after" ] && cmp -s "$target" "$record/after"; then
        # Nobody changed it since the switch: the recorded file, byte for byte.
        replace_file "$record/before" "$target" "$record/before"
        file_changed=true
        outcome=restored
    else
        # Changed by someone else since: only the keys that still hold the switch's values.
        local kind key value previous
        outcome=keysRestored
        while read -r kind key; do
            case "$kind" in
                set)
                    value=${key#*=}
                    key=${key%%=*}
                    if [ "$(value_of "$record/before" "$key")" = "$value" ] && value_of "$record/before" "$key" >/dev/null; then
                        : # the switch wrote what was there before: nothing to put back
                    elif [ "$(value_of "$target" "$key")" = "$value" ] && value_of "$target" "$key" >/dev/null; then
                        if previous=$(lines_of "$record/before" "$key" | tail -n 1) && [ -n "$previous" ]; then
                            sets+="$key=${previous#*=}"$'\n'
                        else
                            unsets+="$key"$'\n'
                        fi
                        keys_text+="$key restored"$'\n'
                    elif value_of "$target" "$key" >/dev/null || value_of "$record/before" "$key" >/dev/null; then
                        if [ "$(value_of "$target" "$key")" != "$(value_of "$record/before" "$key")" ]; then
                            keys_text+="$key changedByOthers"$'\n'
                            outcome=changedByOthers
                        fi
                    fi
                    ;;
                unset)
                    if ! value_of "$target" "$key" >/dev/null; then
                        if lines_of "$record/before" "$key" | grep -q .; then
                            appends+="$(lines_of "$record/before" "$key")"$'\n'
                            keys_text+="$key restored"$'\n'
                        fi
                    elif [ "$(lines_of "$target" "$key")" != "$(lines_of "$record/before" "$key")" ]; then
                        keys_text+="$key changedByOthers"$'\n'
                        outcome=changedByOthers
                    fi
                    ;;
            esac
        done <"$record/keys"
        new=$(mktemp) || fail WriteFailed "cannot create a temporary file"
        TMP=$new
        # A restored line keeps its previous text exactly (quotes and spacing included).
        edit_file "$target" "$sets" "$unsets" "${appends%$'\n'}" >"$new" || fail WriteFailed "cannot edit $target"
        while read -r key; do
            [ -n "$key" ] || continue
            previous=$(lines_of "$record/before" "$key" | tail -n 1)
            PREVIOUS_LINE=$previous awk -v key="$key" '
                match($0, /^[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*=/) {
                    k = substr($0, RSTART, RLENGTH - 1); gsub(/[ \t]/, "", k)
                    if (k == key) { n = NR }
                }
                { all[NR] = $0 }
                END { for (i = 1; i <= NR; i++) print (i == n ? ENVIRON["PREVIOUS_LINE"] : all[i]) }' "$new" >"$new.line" &&
                mv -f "$new.line" "$new"
        done <<<"$(printf '%s' "$sets" | cut -d = -f 1)"
        keep_final_newline "$target" "$new" "$([ -n "$appends" ] && echo true || echo false)"
        if ! cmp -s "$new" "$target"; then
            replace_file "$new" "$target"
            file_changed=true
        fi
        rm -f "$new"
        TMP=""
    fi
    [ "$file_changed" = true ] && CHANGED=true && say "env: put back the Redis keys of $target"

    local units_json="" unit was active restarted started line
    local -a SWITCHED=()
    [ ! -f "$record/keys" ] || mapfile -t SWITCHED < <(sed -n 's/^set //p' "$record/keys")
    while read -r line; do
        unit=${line%% *}
        was=${line#* }
        active=$(unit_active "$unit")
        restarted=false
        started=false
        if [ "$was" = active ]; then
            if [ "$active" != active ]; then
                restart_unit start "$unit" || fail RestartFailed "$unit did not stay active when started again (see $LOG)"
                started=true
                CHANGED=true
            elif [ "$file_changed" = true ] || { [ "${#SWITCHED[@]}" -gt 0 ] && runs_with_values "$unit" "${SWITCHED[@]}"; }; then
                restart_unit restart "$unit" || fail RestartFailed "$unit did not stay active after its restart (see $LOG)"
                restarted=true
                CHANGED=true
            fi
            active=$(unit_active "$unit")
        fi
        units_json+="${units_json:+,}{\"unit\":$(json_string "$unit"),\"active\":$(json_string "$active"),\"restarted\":$restarted,\"started\":$started,\"stopped\":false}"
    done < <(sed -n 's/^UNIT=//p' "$record/state")
    add_file_json "{\"envFile\":$(json_string "$target"),\"units\":[$units_json],\"fileChanged\":$file_changed,\"outcome\":$(json_string "$outcome"),\"keys\":$(json_keys "$keys_text"),\"before\":$(json_before "$record/before")}"
}

restore() {
    local record found=false
    for record in "$SERVICES_DIR"/*/; do
        [ -f "$record/state" ] || continue
        found=true
        restore_one "${record%/}"
    done
    [ "$found" = true ] || { print_result true "" "no host service was switched or stopped by run $RUN_ID; nothing to do"; exit 0; }
}

if [ "$ACTION" = switch ]; then
    switch
    message="host services switched for run $RUN_ID"
elif [ "$ACTION" = stop ]; then
    stop_services
    message="host services stopped for run $RUN_ID"
else
    restore
    message="host services put back as before run $RUN_ID"
fi
[ "$CHANGED" = true ] || message="host services already as asked for run $RUN_ID; nothing changed"
print_result true "" "$message"
exit 0
