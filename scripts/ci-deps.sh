#!/bin/sh
# Installs what the test suite needs beyond Go and Docker, from Debian:
# nginx and Caddy, the front servers internal/testenv/fronttest runs forward auth
# behind (make bench also runs nginx), wrk, make bench's load generator,
# and the PostgreSQL server, which scripts/pg-test.sh starts on loopback for
# the shared-state tests, and docker-compose, which checks the compose file
# of deploy/docker. (Traefik is not
# packaged by Debian: `make fronts` builds it from the Go module proxy.)
# Idempotent and quiet; does nothing when all of them are there.
# Debian/Ubuntu (apt-get), run as root.
set -eu

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=""
have nginx || missing="$missing nginx"
have caddy || missing="$missing caddy"
have wrk || missing="$missing wrk"
have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
# postgresql-15 on bookworm; the tests run their own server on a loopback
# port, a system cluster the package may start does not get in their way.
have_postgres || missing="$missing postgresql"
# docker-compose checks deploy/docker/compose.yml (docker compose v2 does too).
have docker-compose || docker compose version >/dev/null 2>&1 || missing="$missing docker-compose"
if [ -z "$missing" ]; then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ci-deps: missing:$missing, and apt-get is not available; install them by hand" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
for m in $missing; do
	case $m in
	nginx)
		# nginx-light (bookworm) has auth_request and proxy_cache; newer
		# releases only ship nginx.
		apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 ||
			apt-get install -y -qq --no-install-recommends nginx >/dev/null
		;;
	*)
		apt-get install -y -qq --no-install-recommends "$m" >/dev/null
		;;
	esac
done
# The tests start their own servers on free loopback ports; a system nginx
# or Caddy the packages may have started on port 80 does not get in their way.
have nginx && have caddy && have wrk && have_postgres
