# Shared by every host script: sent in front of each one (redis_migration/host/scripts.py), so
# the host needs nothing of ours installed. Functions only; no side effects.

say() { printf '%s\n' "$*"; }

json_string() {
    # Minimal JSON string encoder: every value we emit is ours (no argument values), but quote
    # defensively so a package manager message cannot break the result line.
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/ }
    s=${s//$'\r'/ }
    s=${s//$'\t'/ }
    printf '"%s"' "$s"
}

json_or_null() {
    if [ -n "$1" ]; then json_string "$1"; else printf 'null'; fi
}

# Ends the script with a named error on the result line; print_result is each script's own.
fail() {
    say "error: $1: $2"
    print_result false "$1" "$2"
    exit 1
}

need_value() {
    [ "$#" -ge 2 ] || fail BadArgument "$1 needs a value"
}

# The result line is a contract: even an unforeseen exit ends with one. Each script defines
# cleanup (its temporary files) and installs this with `trap on_exit EXIT`.
# shellcheck disable=SC2317  # invoked by the EXIT trap
on_exit() {
    local rc=$?
    cleanup
    if [ "$RESULT_PRINTED" = false ]; then
        print_result false "UnexpectedExit" "script exited with status $rc before finishing"
        exit 1
    fi
}
