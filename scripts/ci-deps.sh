#!/bin/sh
# Installs what the test suite and make bench need beyond Go and Docker:
# nginx (proxy/forwardauth_nginx_test.go, make bench) and wrk (make bench's
# load generator). Idempotent and quiet; does nothing when both are there.
# Debian/Ubuntu (apt-get), run as root.
set -eu

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
have_wrk() { command -v wrk >/dev/null 2>&1; }

if have_nginx && have_wrk; then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ci-deps: nginx or wrk is missing and apt-get is not available; install them by hand" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
if ! have_wrk; then
	apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
if ! have_nginx; then
	# nginx-light (bookworm) has auth_request; newer releases only ship nginx.
	apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 ||
		apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
# The tests start their own nginx on free loopback ports; a system nginx
# the package may have started on port 80 does not get in their way.
have_nginx && have_wrk
