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
# With SOUNDBATCH_PG_TLS=DIR the cluster takes only TLS connections, with a certificate from a
# CA the script makes in DIR (ca.crt; another-ca.crt signs nothing the server shows), naming
# localhost only; the user certuser must show a certificate (client.crt, client.key).
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
if [ -n "${SOUNDBATCH_PG_TLS:-}" ]; then
    tls="$SOUNDBATCH_PG_TLS"
    mkdir -p "$tls"
    certificate() { # name subject signer-or-self [extension]
        local name="$1" subject="$2" signer="$3" extension="${4:-}"
        if [ "$signer" = self ]; then
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "$subject" \
                -keyout "$tls/$name.key" -out "$tls/$name.crt" 2>/dev/null
        else
            openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$tls/$name.key" -out "$tls/$name.csr" 2>/dev/null
            printf '%s\n' "$extension" >"$tls/$name.ext"
            openssl x509 -req -in "$tls/$name.csr" -CA "$tls/$signer.crt" -CAkey "$tls/$signer.key" -CAcreateserial \
                -days 2 -out "$tls/$name.crt" -extfile "$tls/$name.ext" 2>/dev/null
        fi
    }
    certificate ca "/CN=soundbatch test CA" self
    certificate another-ca "/CN=another CA" self
    certificate server "/CN=localhost" ca "subjectAltName=DNS:localhost"
    certificate client "/CN=certuser" ca "basicConstraints=CA:FALSE"
    cp "$tls/server.crt" "$tls/server.key" "$tls/ca.crt" "$folder/data/"
    [ ${#as_owner[@]} -gt 0 ] && chown postgres "$folder/data/server.crt" "$folder/data/server.key" "$folder/data/ca.crt"
    chmod 600 "$folder/data/server.key"
    cat >>"$folder/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
CONF
    cat >"$folder/data/pg_hba.conf" <<CONF
local all all trust
hostssl all certuser 127.0.0.1/32 cert
hostssl all all 127.0.0.1/32 trust
hostssl all all ::1/128 trust
CONF
fi
"${as_owner[@]}" "$bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w start >/dev/null \
    || { cat "$folder/server.log" >&2; exit 1; }
# Over the cluster's own socket: it takes those whatever it asks of TCP connections.
"${as_owner[@]}" "$bin/createdb" -h "$folder" -p "$port" -U postgres soundbatch_test
if [ -n "${SOUNDBATCH_PG_TLS:-}" ]; then
    "${as_owner[@]}" "$bin/createuser" -h "$folder" -p "$port" -U postgres certuser
    "${as_owner[@]}" "$bin/psql" -q -h "$folder" -p "$port" -U postgres -d soundbatch_test \
        -c "GRANT ALL ON SCHEMA public TO certuser"
fi
export SOUNDBATCH_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/soundbatch_test"
export SOUNDBATCH_TEST_PG_CTL="${as_owner[*]} $bin/pg_ctl -D $folder/data -l $folder/server.log"
if [ "${1:-}" = "--serve" ]; then
    echo "$SOUNDBATCH_TEST_POSTGRES"
    cat >/dev/null  # until whoever started it goes away
else
    "$@"
fi
