#!/usr/bin/env bash
# Snapshots Redis's on-disk persistence (multi-part AOF + dump.rdb) into a verified archive and,
# when asked, uploads it to S3 with the instance's own role.
#
# Sent through SSM Run Command like the install (`bash -s -- ARGS <<'BACKUP_REDIS_SCRIPT'`).
#
# Why files and not BGSAVE: the host holds only the SHA-256 of the password, so nothing here can
# authenticate to Redis, and the password must never travel to the host. Redis's own files are
# enough for an exact snapshot without talking to it:
#   - Redis 7 keeps AOF as a directory: a manifest naming a base file and incr files. Only the
#     last incr file is ever appended to; a rewrite creates new files and swaps the manifest by
#     rename. So: read the manifest, hard-link every file it names, read it again; unchanged
#     means the links form one consistent set (a rewrite that deletes the old files afterwards
#     cannot take them from us). Bounded retries when a rewrite races us.
#   - The copy of the growing incr file is a prefix of it. With appendfsync everysec Redis
#     write()s the AOF before it replies, so every write acknowledged before the copy is in that
#     prefix (page cache, fsynced or not). Its last command may be cut in the middle:
#     redis-check-aof --fix trims the copy (never the live file) to the last whole command, and
#     the archive is only made once redis-check-aof passes.
#   - dump.rdb is replaced by rename on every save, so a hard link is always a whole file; it is
#     kept as a fallback and checked with redis-check-rdb.
# Expiries are stored as absolute times (PEXPIREAT in the AOF, absolute in the RDB), so a restore
# brings every key back with the same expiry instant.
#
# Output: short progress lines, then always, as the last line of stdout:
#   REDIS_BACKUP_RESULT {"ok":...,"archive":...,"sha256":...,"bytes":...,"aof":...,"rdb":...,
#                        "aofTrimmedBytes":...,"uploaded":...,"error":...,"message":...}

set -uo pipefail
export LC_ALL=C
umask 077

DATA_DIR=/var/lib/redis
STAGING_DIR=/var/backups/redis-migration
NAME=""
UPLOAD_S3_URI=""
KEEP_LOCAL=1
MAX_ATTEMPTS=5
# One lock for every host script that touches Redis: install, backup and restore never overlap.
LOCK_FILE=/run/lock/redis-migration.lock

ARCHIVE=""
SHA256=""
BYTES=0
HAS_AOF=false
HAS_RDB=false
TRIMMED=0
UPLOADED=""
RESULT_PRINTED=false
LINK_DIR=""
WORK_DIR=""

# (say, json_string, json_or_null, fail, need_value and on_exit come from host/common.sh, sent
# in front of this script; print_result and cleanup, which they call, are this script's own)

print_result() {
    local ok=$1 error=$2 message=$3
    RESULT_PRINTED=true
    printf 'REDIS_BACKUP_RESULT {"ok":%s,"archive":%s,"sha256":%s,"bytes":%s,"aof":%s,"rdb":%s,"aofTrimmedBytes":%s,"uploaded":%s,"error":%s,"message":%s}\n' \
        "$ok" "$(json_or_null "$ARCHIVE")" "$(json_or_null "$SHA256")" "$BYTES" "$HAS_AOF" "$HAS_RDB" \
        "$TRIMMED" "$(json_or_null "$UPLOADED")" "$(json_or_null "$error")" "$(json_string "${message:0:300}")"
}

# shellcheck disable=SC2317  # invoked by on_exit (common.sh)
cleanup() {
    [ -n "$LINK_DIR" ] && rm -rf "$LINK_DIR"
    [ -n "$WORK_DIR" ] && rm -rf "$WORK_DIR"
    return 0
}
trap on_exit EXIT

while [ "$#" -gt 0 ]; do
    case "$1" in
        --data-dir) need_value "$@"; DATA_DIR=$2; shift 2 ;;
        --staging-dir) need_value "$@"; STAGING_DIR=$2; shift 2 ;;
        --name) need_value "$@"; NAME=$2; shift 2 ;;
        --upload-s3-uri) need_value "$@"; UPLOAD_S3_URI=$2; shift 2 ;;
        --keep-local) need_value "$@"; KEEP_LOCAL=$2; shift 2 ;;
        *) fail BadArgument "unknown argument (value not shown)" ;;
    esac
done

[[ "$DATA_DIR" =~ ^/[A-Za-z0-9._/-]+$ ]] || fail BadArgument "--data-dir must be an absolute path"
[[ "$STAGING_DIR" =~ ^/[A-Za-z0-9._/-]+$ ]] || fail BadArgument "--staging-dir must be an absolute path"
[ -n "$NAME" ] || NAME="redis-$(date -u +%Y%m%dT%H%M%SZ)"
[[ "$NAME" =~ ^[A-Za-z0-9._-]{1,100}$ ]] || fail BadArgument "--name takes letters, digits, . _ -"
[ -z "$UPLOAD_S3_URI" ] || [[ "$UPLOAD_S3_URI" =~ ^s3://[a-z0-9.-]{3,63}/[A-Za-z0-9._/=-]+$ ]] ||
    fail BadArgument "--upload-s3-uri must look like s3://bucket/key"
[[ "$KEEP_LOCAL" =~ ^[0-9]{1,3}$ ]] || fail BadArgument "--keep-local must be a number"
[ "$(id -u)" -eq 0 ] || fail NotRoot "must run as root (SSM Run Command does)"
[ -d "$DATA_DIR" ] || fail NoData "$DATA_DIR does not exist"

CHECK_AOF=$(command -v redis-check-aof || command -v valkey-check-aof) ||
    fail ToolMissing "redis-check-aof (or valkey-check-aof) not found"
CHECK_RDB=$(command -v redis-check-rdb || command -v valkey-check-rdb) ||
    fail ToolMissing "redis-check-rdb (or valkey-check-rdb) not found"
if [ -n "$UPLOAD_S3_URI" ]; then
    command -v aws >/dev/null || fail ToolMissing "the aws CLI is needed for --upload-s3-uri"
fi

if ! mkdir -p "$STAGING_DIR" "$(dirname "$LOCK_FILE")" || ! chmod 0700 "$STAGING_DIR"; then
    fail StagingFailed "cannot create $STAGING_DIR"
fi
# One backup or restore at a time: a restore swapping the data directory under a backup would
# leave the archive with files of two datasets.
exec 9>"$LOCK_FILE"
flock -w 60 9 || fail Busy "another install, backup or restore holds $LOCK_FILE"

# ---------------------------------------------------------------------------- consistent links

AOF_DIR_NAME=appendonlydir
MANIFEST_NAME=appendonly.aof.manifest
# Links must be on the data directory's filesystem; Redis ignores a directory it does not know.
LINK_DIR=$(mktemp -d "$DATA_DIR/.redis-migration-backup.XXXXXX") || fail StagingFailed "cannot create a link directory"

manifest_files() {
    # "file appendonly.aof.1.base.rdb seq 1 type b" -> appendonly.aof.1.base.rdb (names have no spaces)
    sed -n 's/^file \([^ ]*\) .*/\1/p' "$1"
}

link_snapshot() {
    local manifest=$DATA_DIR/$AOF_DIR_NAME/$MANIFEST_NAME file
    rm -rf "${LINK_DIR:?}"/* && mkdir -p "$LINK_DIR/$AOF_DIR_NAME"
    HAS_AOF=false
    HAS_RDB=false
    if [ -f "$manifest" ]; then
        cp "$manifest" "$LINK_DIR/$AOF_DIR_NAME/$MANIFEST_NAME" || return 1
        for file in $(manifest_files "$LINK_DIR/$AOF_DIR_NAME/$MANIFEST_NAME"); do
            [[ "$file" =~ ^[A-Za-z0-9._-]+$ ]] || return 1
            ln "$DATA_DIR/$AOF_DIR_NAME/$file" "$LINK_DIR/$AOF_DIR_NAME/$file" 2>/dev/null || return 1
        done
        # The manifest we linked against must still be the live one.
        cmp -s "$manifest" "$LINK_DIR/$AOF_DIR_NAME/$MANIFEST_NAME" || return 1
        HAS_AOF=true
    fi
    if [ -f "$DATA_DIR/dump.rdb" ]; then
        ln "$DATA_DIR/dump.rdb" "$LINK_DIR/dump.rdb" 2>/dev/null && HAS_RDB=true
    fi
    return 0
}

LINKED=false
for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
    if link_snapshot; then
        LINKED=true
        break
    fi
    say "an AOF rewrite changed the file set; trying again ($attempt/$MAX_ATTEMPTS)"
    sleep 1
done
[ "$LINKED" = true ] || fail SnapshotRaced "the AOF file set kept changing over $MAX_ATTEMPTS attempts"
[ "$HAS_AOF" = true ] || [ "$HAS_RDB" = true ] || fail NoData "neither $AOF_DIR_NAME/ nor dump.rdb in $DATA_DIR"

# ---------------------------------------------------------------------------- copy, check, trim

WORK_DIR=$(mktemp -d "$STAGING_DIR/.work.XXXXXX") || fail StagingFailed "cannot create a work directory"
cp -R --preserve=timestamps "$LINK_DIR/." "$WORK_DIR/" || fail StagingFailed "cannot copy the snapshot"
rm -rf "$LINK_DIR"
LINK_DIR=""

if [ "$HAS_AOF" = true ]; then
    MANIFEST=$WORK_DIR/$AOF_DIR_NAME/$MANIFEST_NAME
    BEFORE=$(du -sb "$WORK_DIR/$AOF_DIR_NAME" | cut -f 1)
    if ! "$CHECK_AOF" "$MANIFEST" >/dev/null 2>&1; then
        # Expected when a write was being appended during the copy; the copy is trimmed, not the server's file.
        echo y | "$CHECK_AOF" --fix "$MANIFEST" >/dev/null 2>&1
        "$CHECK_AOF" "$MANIFEST" >/dev/null 2>&1 || fail AofInvalid "the AOF copy does not pass redis-check-aof even after --fix"
    fi
    TRIMMED=$((BEFORE - $(du -sb "$WORK_DIR/$AOF_DIR_NAME" | cut -f 1)))
fi
if [ "$HAS_RDB" = true ] && ! "$CHECK_RDB" "$WORK_DIR/dump.rdb" >/dev/null 2>&1; then
    [ "$HAS_AOF" = true ] || fail RdbInvalid "dump.rdb does not pass redis-check-rdb and there is no AOF"
    # The AOF is what Redis loads; a bad fallback is left out rather than shipped.
    say "note: dump.rdb fails redis-check-rdb; archived without it"
    rm -f "$WORK_DIR/dump.rdb"
    HAS_RDB=false
fi

{
    printf '{"format":1,"createdAt":"%s","host":%s,"aof":%s,"rdb":%s,"files":[' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(json_string "$(hostname)")" "$HAS_AOF" "$HAS_RDB"
    first=true
    while IFS= read -r path; do
        [ "$first" = true ] || printf ','
        first=false
        printf '{"path":%s,"sha256":"%s"}' "$(json_string "${path#./}")" "$(sha256sum "$WORK_DIR/$path" | cut -d ' ' -f 1)"
    done < <(cd "$WORK_DIR" && find . -type f | sort)
    printf ']}\n'
} >"$WORK_DIR/MANIFEST.json"

TMP_ARCHIVE=$(mktemp "$STAGING_DIR/.$NAME.XXXXXX") || fail StagingFailed "cannot create the archive"
tar -czf "$TMP_ARCHIVE" --numeric-owner --owner=0 --group=0 -C "$WORK_DIR" . ||
    fail StagingFailed "tar failed"
ARCHIVE=$STAGING_DIR/$NAME.tar.gz
mv -f "$TMP_ARCHIVE" "$ARCHIVE" || fail StagingFailed "cannot move the archive into place"
SHA256=$(sha256sum "$ARCHIVE" | cut -d ' ' -f 1)
BYTES=$(stat -c %s "$ARCHIVE")
say "archive: $ARCHIVE ($BYTES bytes, aof=$HAS_AOF rdb=$HAS_RDB, trimmed $TRIMMED bytes)"

# ---------------------------------------------------------------------------- upload

if [ -n "$UPLOAD_S3_URI" ]; then
    # S3 verifies the SHA-256 on receipt; the caller compares it with the one printed here.
    UPLOAD_ERR=$(aws s3 cp --only-show-errors --checksum-algorithm SHA256 "$ARCHIVE" "$UPLOAD_S3_URI" 2>&1) ||
        fail UploadFailed "aws s3 cp failed: ${UPLOAD_ERR: -200}"
    UPLOADED=$UPLOAD_S3_URI
    say "uploaded: $UPLOAD_S3_URI"
fi

# Keep the newest KEEP_LOCAL archives for a quick local restore; the rest live in S3.
mapfile -t OLD < <(find "$STAGING_DIR" -maxdepth 1 -name 'redis-*.tar.gz' -printf '%T@ %p\n' | sort -rn | tail -n +"$((KEEP_LOCAL + 1))" | cut -d ' ' -f 2-)
for old in "${OLD[@]}"; do
    [ "$old" = "$ARCHIVE" ] || rm -f "$old"
done

print_result true "" "backup of $DATA_DIR written"
exit 0
