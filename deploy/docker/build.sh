#!/bin/sh
# build.sh [TAG]: builds l402proxy from this checkout into the image TAG
# (default l402kit/l402proxy:dev) with deploy/docker/Dockerfile: a static
# binary compiled on this machine (CGO_ENABLED=0) and the system's CA
# certificates, copied into an image FROM scratch by Docker's classic
# builder. Nothing is pulled. `make image` runs it.
set -eu
tag=${1:-l402kit/l402proxy:dev}
root=$(cd "$(dirname "$0")/../.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
(cd "$root" && CGO_ENABLED=0 ${GO:-go} build -trimpath -ldflags='-s -w' -o "$ctx/l402proxy" ./cmd/l402proxy)
cp "$root/deploy/docker/Dockerfile" "$ctx/Dockerfile"
ca=/etc/ssl/certs/ca-certificates.crt
if [ ! -r "$ca" ]; then
	echo "build.sh: $ca not found (Debian: apt-get install ca-certificates); https upstreams will fail to verify" >&2
	: >"$ctx/ca-certificates.crt"
else
	cp "$ca" "$ctx/ca-certificates.crt"
fi
mkdir "$ctx/data"
DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >/dev/null
echo "$tag"
