#!/bin/sh
# Installs what the test suite needs beyond Go and Docker: nginx, for
# proxy/forwardauth_nginx_test.go. Idempotent and quiet; does nothing when
# nginx is already there. Debian/Ubuntu (apt-get), run as root.
set -eu

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ci-deps: nginx is missing and apt-get is not available; install nginx by hand" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# nginx-light (bookworm) has auth_request; newer releases only ship nginx.
apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 ||
	apt-get install -y -qq --no-install-recommends nginx >/dev/null
# The tests start their own nginx on free loopback ports; a system nginx
# the package may have started on port 80 does not get in their way.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
