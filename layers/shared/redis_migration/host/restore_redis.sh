#!/usr/bin/env bash
# Restores a backup made by backup_redis.sh: checks it, stops Redis, swaps the data directory,
# starts Redis and verifies it loaded the snapshot. The data directory it replaces is kept.
#
# Sent through SSM Run Command like the install (`bash -s -- ARGS <<'RESTORE_REDIS_SCRIPT'`).
# The archive comes from S3 with the instance's own role (--s3-uri) or from a local path
# (--archive, e.g. the staging copy the backup kept). --sha256 is required: the archive must be
# exactly the one the backup reported, byte for byte, before anything is stopped.
#
# Nothing here needs the password: every check reads files, the server log, and an
# unauthenticated PING (which must be refused with NOAUTH, as after the install).
#
# Output: progress lines, then always, as the last line of stdout:
#   REDIS_RESTORE_RESULT {"ok":...,"service":...,"previousDataDir":...,"rolledBack":...,
#                         "error":...,"message":...}

set -uo pipefail
export LC_ALL=C
umask 077

DATA_DIR=/var/lib/redis
STAGING_DIR=/var/backups/redis-migration
LOG_FILE=/var/log/redis/redis.log
ARCHIVE=""
S3_URI=""
EXPECTED_SHA256=""
PORT=6379
SERVICE=""
KEEP_PREVIOUS=2
# One lock for every host script that touches Redis: install, backup and restore never overlap.
LOCK_FILE=/run/lock/redis-migration.lock
START_WAIT_ATTEMPTS=240 # x 0.5 s: loading a large AOF takes a while

PREVIOUS_DIR=""
ROLLED_BACK=false
RESULT_PRINTED=false
EXTRACT_DIR=""
DOWNLOADED=""

# (say, json_string, json_or_null, fail, need_value and on_exit come from host/common.sh, sent
# in front of this script; print_result and cleanup, which they call, are this script's own)

print_result() {
    local ok=$1 error=$2 message=$3
    RESULT_PRINTED=true
    printf 'REDIS_RESTORE_RESULT {"ok":%s,"service":%s,"previousDataDir":%s,"rolledBack":%s,"error":%s,"message":%s}\n' \
        "$ok" "$(json_or_null "$SERVICE")" "$(json_or_null "$PREVIOUS_DIR")" "$ROLLED_BACK" \
        "$(json_or_null "$error")" "$(json_string "${message:0:300}")"
}

# shellcheck disable=SC2317  # invoked by on_exit (common.sh)
cleanup() {
    [ -n "$EXTRACT_DIR" ] && rm -rf "$EXTRACT_DIR"
    [ -n "$DOWNLOADED" ] && rm -f "$DOWNLOADED"
    return 0
}
trap on_exit EXIT

while [ "$#" -gt 0 ]; do
    case "$1" in
        --archive) need_value "$@"; ARCHIVE=$2; shift 2 ;;
        --s3-uri) need_value "$@"; S3_URI=$2; shift 2 ;;
        --sha256) need_value "$@"; EXPECTED_SHA256=$2; shift 2 ;;
        --data-dir) need_value "$@"; DATA_DIR=$2; shift 2 ;;
        --staging-dir) need_value "$@"; STAGING_DIR=$2; shift 2 ;;
        --log-file) need_value "$@"; LOG_FILE=$2; shift 2 ;;
        --port) need_value "$@"; PORT=$2; shift 2 ;;
        --service) need_value "$@"; SERVICE=$2; shift 2 ;;
        *) fail BadArgument "unknown argument (value not shown)" ;;
    esac
done

for path in "$DATA_DIR" "$STAGING_DIR" "$LOG_FILE"; do
    [[ "$path" =~ ^/[A-Za-z0-9._/-]+$ ]] || fail BadArgument "paths must be absolute and plain"
done
if { [ -n "$ARCHIVE" ] && [ -n "$S3_URI" ]; } || { [ -z "$ARCHIVE" ] && [ -z "$S3_URI" ]; }; then
    fail BadArgument "give exactly one of --archive and --s3-uri"
fi
[ -z "$ARCHIVE" ] || [[ "$ARCHIVE" =~ ^/[A-Za-z0-9._/-]+\.tar\.gz$ ]] || fail BadArgument "--archive must be an absolute .tar.gz path"
[ -z "$S3_URI" ] || [[ "$S3_URI" =~ ^s3://[a-z0-9.-]{3,63}/[A-Za-z0-9._/=-]+$ ]] || fail BadArgument "--s3-uri must look like s3://bucket/key"
[[ "$EXPECTED_SHA256" =~ ^[0-9a-f]{64}$ ]] || fail BadArgument "--sha256 must be 64 lowercase hex characters"
[[ "$PORT" =~ ^[0-9]{1,5}$ ]] || fail BadArgument "--port must be a number"
[ -z "$SERVICE" ] || [[ "$SERVICE" =~ ^[A-Za-z0-9@._-]+$ ]] || fail BadArgument "--service must be a unit name"
[ "$(id -u)" -eq 0 ] || fail NotRoot "must run as root (SSM Run Command does)"

unit_file() {
    local dir
    for dir in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
        if [ -f "$dir/$1.service" ]; then
            printf '%s' "$dir/$1.service"
            return 0
        fi
    done
    return 1
}

if [ -z "$SERVICE" ]; then
    # The units the install script manages, in its order: Debian/Ubuntu, AL2023 (Valkey), RHEL.
    for candidate in redis-server valkey redis; do
        if unit_file "$candidate" >/dev/null; then SERVICE=$candidate; break; fi
    done
    [ -n "$SERVICE" ] || fail NoService "no redis-server, valkey or redis unit on this host"
fi
UNIT=$(unit_file "$SERVICE") || fail NoService "unit $SERVICE not found"
SERVICE_USER=$(sed -n 's/^User=//p' "$UNIT" | tail -n 1)
SERVICE_USER=${SERVICE_USER:-redis}
SERVICE_GROUP=$(sed -n 's/^Group=//p' "$UNIT" | tail -n 1)
SERVICE_GROUP=${SERVICE_GROUP:-$SERVICE_USER}
id "$SERVICE_USER" >/dev/null 2>&1 || fail NoService "service user $SERVICE_USER does not exist"
CLI_BIN=$(command -v redis-cli || command -v valkey-cli) || fail ToolMissing "redis-cli (or valkey-cli) not found"
CHECK_AOF=$(command -v redis-check-aof || command -v valkey-check-aof) || fail ToolMissing "redis-check-aof not found"
CHECK_RDB=$(command -v redis-check-rdb || command -v valkey-check-rdb) || fail ToolMissing "redis-check-rdb not found"

if ! mkdir -p "$STAGING_DIR" "$(dirname "$LOCK_FILE")" || ! chmod 0700 "$STAGING_DIR"; then
    fail StagingFailed "cannot create $STAGING_DIR"
fi
exec 9>"$LOCK_FILE"
flock -w 60 9 || fail Busy "another install, backup or restore holds $LOCK_FILE"

# ---------------------------------------------------------------------------- fetch and verify, before any change

if [ -n "$S3_URI" ]; then
    command -v aws >/dev/null || fail ToolMissing "the aws CLI is needed for --s3-uri"
    DOWNLOADED=$(mktemp "$STAGING_DIR/.restore.XXXXXX") || fail StagingFailed "cannot create a download file"
    ERR=$(aws s3 cp --only-show-errors "$S3_URI" "$DOWNLOADED" 2>&1) || fail DownloadFailed "aws s3 cp failed: ${ERR: -200}"
    ARCHIVE=$DOWNLOADED
fi
[ -f "$ARCHIVE" ] || fail ArchiveMissing "archive not found"
[ "$(sha256sum "$ARCHIVE" | cut -d ' ' -f 1)" = "$EXPECTED_SHA256" ] ||
    fail ChecksumMismatch "the archive's SHA-256 is not the expected one; nothing was changed"

MEMBERS=$(tar -tzf "$ARCHIVE") || fail ArchiveInvalid "not a readable .tar.gz"
# Only plain relative paths: an archive must not write outside the directory it is unpacked in.
if grep -Eq '(^/|(^|/)\.\.(/|$))' <<<"$MEMBERS"; then
    fail ArchiveInvalid "archive has absolute or .. paths"
fi

DATA_PARENT=$(dirname "$DATA_DIR")
# Unpacked next to the data directory: the swap below is then a rename on one filesystem.
EXTRACT_DIR=$(mktemp -d "$DATA_PARENT/.$(basename "$DATA_DIR").restore.XXXXXX") || fail StagingFailed "cannot create an extract directory"
tar -xzf "$ARCHIVE" --no-same-owner --no-same-permissions -C "$EXTRACT_DIR" || fail ArchiveInvalid "tar could not unpack the archive"
[ -f "$EXTRACT_DIR/MANIFEST.json" ] || fail ArchiveInvalid "no MANIFEST.json: not made by backup_redis.sh"
rm -f "$EXTRACT_DIR/MANIFEST.json"

if [ -f "$EXTRACT_DIR/appendonlydir/appendonly.aof.manifest" ]; then
    "$CHECK_AOF" "$EXTRACT_DIR/appendonlydir/appendonly.aof.manifest" >/dev/null 2>&1 ||
        fail ArchiveInvalid "the archived AOF fails redis-check-aof; nothing was changed"
elif [ ! -f "$EXTRACT_DIR/dump.rdb" ]; then
    fail ArchiveInvalid "the archive holds neither appendonlydir/ nor dump.rdb"
fi
if [ -f "$EXTRACT_DIR/dump.rdb" ]; then
    "$CHECK_RDB" "$EXTRACT_DIR/dump.rdb" >/dev/null 2>&1 || fail ArchiveInvalid "the archived dump.rdb fails redis-check-rdb"
fi

# The owner and modes the server expects: its user, no access for others.
chown -R "$SERVICE_USER:$SERVICE_GROUP" "$EXTRACT_DIR" || fail StagingFailed "cannot set the owner"
if ! find "$EXTRACT_DIR" -type d -exec chmod 0750 {} + || ! find "$EXTRACT_DIR" -type f -exec chmod 0640 {} +; then
    fail StagingFailed "cannot set modes"
fi

# ---------------------------------------------------------------------------- swap

service_stop() {
    systemctl stop "$SERVICE" >/dev/null 2>&1
    local _
    for _ in $(seq 1 120); do
        systemctl is-active --quiet "$SERVICE" || return 0
        sleep 0.5
    done
    return 1
}

log_size() { stat -c %s "$LOG_FILE" 2>/dev/null || echo 0; }

wait_ready() {
    # Loading happens before "Ready to accept connections": that line in the new part of the log
    # means the snapshot was read; then an unauthenticated PING must get NOAUTH.
    local from=$1 _ reply
    for _ in $(seq 1 "$START_WAIT_ATTEMPTS"); do
        if tail -c +"$((from + 1))" "$LOG_FILE" 2>/dev/null | grep -q 'Ready to accept connections'; then
            reply=$(timeout 3 "$CLI_BIN" -h 127.0.0.1 -p "$PORT" PING 2>&1 </dev/null)
            case "$reply" in *NOAUTH*) return 0 ;; esac
        fi
        systemctl is-active --quiet "$SERVICE" || return 1
        sleep 0.5
    done
    return 1
}

say "stopping $SERVICE"
service_stop || fail ServiceFailedToStop "$SERVICE did not stop; nothing was changed"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
PREVIOUS_DIR="$DATA_DIR.before-restore-$STAMP"
if [ -d "$DATA_DIR" ]; then
    mv "$DATA_DIR" "$PREVIOUS_DIR" || { systemctl start "$SERVICE"; fail SwapFailed "cannot move $DATA_DIR aside; Redis restarted on its old data"; }
else
    PREVIOUS_DIR=""
fi
mv "$EXTRACT_DIR" "$DATA_DIR" || fail SwapFailed "cannot move the restored data into $DATA_DIR (previous data in $PREVIOUS_DIR)"
EXTRACT_DIR=""
chmod 0750 "$DATA_DIR"

FROM=$(log_size)
say "starting $SERVICE on the restored data"
if ! systemctl start "$SERVICE" >/dev/null 2>&1 || ! wait_ready "$FROM"; then
    REASON=$(tail -c +"$((FROM + 1))" "$LOG_FILE" 2>/dev/null | grep -E '#|Bad|rror|ailed' | tail -n 3 | tr '\n' ' ')
    # Put the previous data back so the host is no worse than before the restore.
    service_stop
    if [ -n "$PREVIOUS_DIR" ]; then
        mv "$DATA_DIR" "$DATA_DIR.failed-restore-$STAMP" && mv "$PREVIOUS_DIR" "$DATA_DIR" && ROLLED_BACK=true
        PREVIOUS_DIR=""
    fi
    systemctl start "$SERVICE" >/dev/null 2>&1
    fail RestoreFailed "Redis did not come up on the restored data (${REASON:0:160}); previous data put back: $ROLLED_BACK"
fi

# Keep the newest KEEP_PREVIOUS replaced directories (an undo); older ones only fill the disk.
mapfile -t OLD < <(find "$DATA_PARENT" -maxdepth 1 -type d -name "$(basename "$DATA_DIR").before-restore-*" | sort -r | tail -n +"$((KEEP_PREVIOUS + 1))")
for old in "${OLD[@]}"; do
    rm -rf "$old"
done

print_result true "" "restored into $DATA_DIR; $SERVICE loaded it and demands auth"
exit 0
