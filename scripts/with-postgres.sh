#!/usr/bin/env bash
# Runs COMMAND with a private PostgreSQL cluster: made with initdb in a temporary folder,
# started with pg_ctl on a free loopback port (as the postgres user when run as root, since
# PostgreSQL refuses to run as root), then stopped and removed whatever COMMAND does.
# COMMAND finds the cluster's database in $SOUNDBATCH_TEST_POSTGRES, and pg_ctl for it in
# $SOUNDBATCH_TEST_PG_CTL (for outages on purpose: $SOUNDBATCH_TEST_PG_CTL stop -m fast,
# then $SOUNDBATCH_TEST_PG_CTL start -w).
#   scripts/with-postgres.sh swift test
#   scripts/with-postgres.sh --serve   (start it, print the URL, stop it when stdin closes)
# Tests run it with fsync off, for speed; benchmarks with SOUNDBATCH_PG_FSYNC=on, as a server runs.
set -euo pipefail
initdb="$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1 || true)"
bin="$(dirname "$(readlink -f "${initdb:-/nonexistent}")")"
if [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pg_ctl" ]; then
    echo "with-postgres: PostgreSQL's initdb and pg_ctl were not found; install it: apt-get install postgresql" >&2
    exit 69
fi
folder="$(mktemp -d "${TMPDIR:-/tmp}/soundbatch-postgres.XXXXXX")"
chmod 755 "$folder"
source "$(dirname "$0")/lib.sh"
port=$(free_port)
as_owner=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$folder"
    as_owner=(runuser -u postgres --)
fi
stop() {
    "${as_owner[@]}" "$bin/pg_ctl" -D "$folder/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$folder"
}
trap stop EXIT
"${as_owner[@]}" "$bin/initdb" -D "$folder/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$folder/initdb.log" 2>&1 \
    || { cat "$folder/initdb.log" >&2; exit 1; }
# In its configuration file, not on pg_ctl's command line, so that a restart keeps them.
cat >>"$folder/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$folder'
fsync = ${SOUNDBATCH_PG_FSYNC:-off}
CONF
"${as_owner[@]}" "$bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w start >/dev/null \
    || { cat "$folder/server.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres soundbatch_test
export SOUNDBATCH_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/soundbatch_test"
export SOUNDBATCH_TEST_PG_CTL="${as_owner[*]} $bin/pg_ctl -D $folder/data -l $folder/server.log"
if [ "${1:-}" = "--serve" ]; then
    echo "$SOUNDBATCH_TEST_POSTGRES"
    cat >/dev/null  # until whoever started it goes away
else
    "$@"
fi
