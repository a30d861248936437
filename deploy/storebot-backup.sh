#!/usr/bin/env bash
# storebot's PostgreSQL backup: one pg_dump custom-format archive (-Fc) per run,
# named by its UTC time, the newest BACKUP_KEEP kept. Exits non-zero when the dump
# fails or is unreadable, so a systemd timer (deploy/storebot-backup.timer) or cron
# reports it; a failed run leaves no file behind and removes no old backup.
#
# Environment:
#   DATABASE_URL   the database to dump, as the app reads it
#                  (postgres://user:password@host:port/name); unset or empty:
#                  libpq's PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD or ~/.pgpass
#   BACKUP_DIR     where the archives go (default /var/backups/storebot)
#   BACKUP_KEEP    how many archives to keep, the newest (default 14)
#   BACKUP_PREFIX  the archives' name prefix (default storebot)
#   PG_DUMP        the dump command (default pg_dump); split on spaces, e.g. for
#                  docker compose, with DATABASE_URL empty:
#                  PG_DUMP="docker compose --project-directory /srv/storebot/app exec -T db pg_dump -U storebot storebot"
#   PG_RESTORE     the command that reads the archive back (default pg_restore), on
#                  standard input; for docker compose the same way:
#                  PG_RESTORE="docker compose --project-directory /srv/storebot/app exec -T db pg_restore"
#
# Restore (README.md, "Backup and restore"):
#   pg_restore --clean --if-exists --no-owner -d <database> <archive>
set -euo pipefail

backup_dir=${BACKUP_DIR:-/var/backups/storebot}
keep=${BACKUP_KEEP:-14}
prefix=${BACKUP_PREFIX:-storebot}
read -r -a pg_dump <<<"${PG_DUMP:-pg_dump}"
read -r -a pg_restore <<<"${PG_RESTORE:-pg_restore}"

if ! [[ $keep =~ ^[0-9]+$ ]] || ((keep < 1)); then
    echo "storebot-backup: BACKUP_KEEP must be a whole number from 1, not '$keep'" >&2
    exit 2
fi

target=()
if [[ -n ${DATABASE_URL:-} ]]; then
    url=$DATABASE_URL
    # django-environ's other names for PostgreSQL; libpq knows only these two.
    case $url in
        postgres://* | postgresql://*) ;;
        pgsql://* | psql://* | postgis://*) url="postgresql://${url#*://}" ;;
        *)
            echo "storebot-backup: DATABASE_URL is not a PostgreSQL URL (${url%%://*}://...)" >&2
            exit 2
            ;;
    esac
    target=(--dbname "$url")
fi

umask 077
mkdir -p "$backup_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
archive="$backup_dir/$prefix-$stamp.dump"
partial="$archive.partial"
trap 'rm -f "$partial"' EXIT

# Into a .partial file first: a dump cut short never looks like a backup.
"${pg_dump[@]}" --format=custom "${target[@]}" >"$partial"
# Read back whole, as a restore would read it (into no database): a truncated or
# corrupt archive fails here, not on the day it is needed.
"${pg_restore[@]}" --file=/dev/null <"$partial"
mv "$partial" "$archive"
trap - EXIT
echo "storebot-backup: $archive ($(stat -c %s "$archive") bytes)"

# The newest $keep archives stay; names sort by time.
mapfile -t archives < <(find "$backup_dir" -maxdepth 1 -type f -name "$prefix-*.dump" -printf '%f\n' | sort)
excess=$((${#archives[@]} - keep))
for ((i = 0; i < excess; i++)); do
    rm -f -- "$backup_dir/${archives[i]}"
    echo "storebot-backup: removed ${archives[i]}"
done
