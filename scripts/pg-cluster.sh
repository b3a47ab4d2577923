#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests and the benches: no TCP listener, one Unix socket in its own
# directory, trust authentication for the local user only, stopped by `stop`.
#
#   scripts/pg-cluster.sh start DIR [--fast]   initdb (if DIR is new) and start; prints the connection URL
#   scripts/pg-cluster.sh url DIR              prints the connection URL of a started cluster
#   scripts/pg-cluster.sh stop DIR             stops it (DIR is kept; rm -rf it to drop the data)
#
# --fast turns off fsync and synchronous commit: for the conformance tests only, never for figures.
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
    opts="-c listen_addresses='' -c unix_socket_directories='$dir/socket' -c port=5432 -c max_connections=200"
    if [ "${3:-}" = --fast ]; then opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null
    url
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
