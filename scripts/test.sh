#!/usr/bin/env bash
# The test suite: `cargo test --workspace` with a private PostgreSQL cluster for the store's conformance suite's
# PostgreSQL half (scripts/pg-cluster.sh: a temporary directory, a Unix socket, no TCP port, stopped on exit).
# Where no PostgreSQL server is installed (Debian's `postgresql` package), the PostgreSQL half is skipped and says
# so; VOUCHSAFE_REQUIRE_POSTGRES=1 (CI) makes that an error instead. Arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VOUCHSAFE_TEST_POSTGRES:-}" ]; then
  pgdir=$(mktemp -d "${TMPDIR:-/tmp}/vouchsafe-pg.XXXXXX")
  if url=$(scripts/pg-cluster.sh start "$pgdir" --fast 2>"$pgdir.err"); then
    trap 'scripts/pg-cluster.sh stop "$pgdir" || true; rm -rf "$pgdir" "$pgdir.err"' EXIT
    export VOUCHSAFE_TEST_POSTGRES="$url"
    echo "PostgreSQL for the tests: $url"
  else
    echo "PostgreSQL could not be started ($(cat "$pgdir.err")): its half of the store's conformance suite is skipped" >&2
    rm -rf "$pgdir" "$pgdir.err"
    if [ "${VOUCHSAFE_REQUIRE_POSTGRES:-}" = 1 ]; then exit 1; fi
  fi
fi

cargo test --workspace "$@"
