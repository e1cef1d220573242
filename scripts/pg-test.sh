#!/bin/sh
# Starts a throwaway PostgreSQL (the Debian package's server binaries) on
# 127.0.0.1 for the tests and prints its connection string. Idempotent: a
# server this script started and that still runs is reused, so test packages
# running in parallel share one. Trust authentication for user l402kit on
# loopback only; the data directory lives under /tmp. As root, the server runs
# as the postgres user (PostgreSQL refuses to run as root).
#
#   scripts/pg-test.sh          start (or reuse), print the DSN
#   scripts/pg-test.sh stop     stop it
#
# L402KIT_PG_PORT (default 55432) and L402KIT_PG_DIR change where it runs.
set -eu

port=${L402KIT_PG_PORT:-55432}
dir=${L402KIT_PG_DIR:-/tmp/l402kit-pg-$port}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	echo "pg-test: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (scripts/ci-deps.sh installs them)" >&2
	exit 2
fi

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

mkdir -p "$dir.d"
[ "$(id -u)" = 0 ] && chown postgres "$dir.d"
exec 9>"$dir.d/lock"
flock 9

if [ "${1:-}" = stop ]; then
	[ -f "$dir/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
	exit 0
fi

if [ ! -f "$dir/PG_VERSION" ]; then
	rm -rf "$dir"
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	chmod 700 "$dir"
	as_owner "$bin/initdb" -D "$dir" -U l402kit --auth=trust -E UTF8 --no-instructions >"$dir.d/initdb.log" 2>&1 || {
		cat "$dir.d/initdb.log" >&2
		exit 1
	}
fi
if ! as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
	# The server must not inherit our output (a caller reading it would
	# wait for the server to exit) nor the lock.
	as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start \
		</dev/null >"$dir.d/pg_ctl.log" 2>&1 9>&- || {
		cat "$dir.d/pg_ctl.log" >&2
		tail -n 20 "$dir/server.log" >&2
		exit 1
	}
fi
echo "postgres://l402kit@127.0.0.1:$port/postgres?sslmode=disable"
