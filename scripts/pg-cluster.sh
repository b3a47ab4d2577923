#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests and the benches: no TCP listener, one Unix socket in its own
# directory, trust authentication for the local user only, stopped by `stop`.
#
#   scripts/pg-cluster.sh start DIR [--fast] [--tls CERT KEY PORT]
#                                              initdb (if DIR is new) and start; prints the connection URL
#   scripts/pg-cluster.sh url DIR              prints the connection URL of a started cluster (Unix socket)
#   scripts/pg-cluster.sh stop DIR             stops it (DIR is kept; rm -rf it to drop the data)
#
# --fast turns off fsync and synchronous commit: for the conformance tests only, never for figures.
# --tls also listens on 127.0.0.1:PORT with TLS only there (the server certificate CERT and its key KEY, PEM,
# copied into DIR), for the store's TLS test; the URL printed is then that TCP one, for the host name localhost.
# Uses the newest server under /usr/lib/postgresql (Debian's packages; `.ci/run` installs `postgresql` if it is
# missing). initdb refuses to run as root, so as root the cluster runs as the `postgres` system user.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|url|stop DIR [--fast]" >&2; exit 2; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ]; then
  echo "PostgreSQL server binaries not found under /usr/lib/postgresql (install Debian's postgresql package)" >&2
  exit 3
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
owner=$(if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi)
url() { echo "postgresql:///postgres?host=$dir/socket&port=5432&user=$owner"; }

case "$cmd" in
  start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir/data" -U "$owner" --auth=trust --no-instructions -E UTF8 >"$dir/initdb.log"
      as_owner mkdir -p "$dir/socket"
    fi
    shift 2
    fast=0 tls_port=
    while [ $# -gt 0 ]; do
      case "$1" in
        --fast) fast=1; shift ;;
        --tls)
          [ $# -ge 4 ] || { echo "--tls needs CERT KEY PORT" >&2; exit 2; }
          mkdir -p "$dir/tls"
          cp "$2" "$dir/tls/server.crt"
          cp "$3" "$dir/tls/server.key"
          chmod 600 "$dir/tls/server.key"
          if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir/tls"; fi
          tls_port=$4
          shift 4
          ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
      esac
    done
    if [ -n "$tls_port" ]; then
      port=$tls_port
      opts="-c listen_addresses='127.0.0.1' -c unix_socket_directories='$dir/socket' -c port=$port"
      opts="$opts -c ssl=on -c ssl_cert_file='$dir/tls/server.crt' -c ssl_key_file='$dir/tls/server.key'"
      # TCP connections must use TLS: hostssl lines only (trust, as the local socket).
      printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\n' | as_owner tee "$dir/data/pg_hba.conf" >/dev/null
    else
      port=5432
      opts="-c listen_addresses='' -c unix_socket_directories='$dir/socket' -c port=$port"
    fi
    opts="$opts -c max_connections=200"
    if [ "$fast" = 1 ]; then opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null
    if [ -n "$tls_port" ]; then
      echo "postgresql://$owner@localhost:$port/postgres?hostaddr=127.0.0.1"
    else
      url
    fi
    ;;
  url)
    dir=$(cd "$dir" && pwd)
    url
    ;;
  stop)
    dir=$(cd "$dir" && pwd)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start|url|stop DIR [--fast]" >&2
    exit 2
    ;;
esac
