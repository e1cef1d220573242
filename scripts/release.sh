#!/usr/bin/env bash
# make release: static binaries of l402proxy and l402 for linux and darwin
# on amd64 and arm64, with SHA-256 checksums, then checked.
#
# - Built from the committed HEAD (a clone of it in a temporary directory),
#   never from the working tree, so uncommitted changes are not in a
#   release; -trimpath and CGO_ENABLED=0, so no path of this machine and no
#   C library is in the binaries.
# - The version they print is the module version the Go toolchain stamps
#   from git: the tag at HEAD (v0.1.0), or a pseudo-version after the last
#   tag. A clone without tags (CI's) gets the last release's tag back from
#   .release/baseline, inside the temporary clone only.
# - Checks: the linux/amd64 binaries start and print their version with
#   HEAD's commit (on a linux/amd64 machine); and both are built a second
#   time in another directory with an empty build cache, and must be
#   byte-identical to the first (RELEASE_REPRO=0 skips this slow part).
#
# Output: $RELEASE_DIR (default dist/): NAME-GOOS-GOARCH and SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(realpath -m "${RELEASE_DIR:-dist}")
platforms="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"
commands="l402proxy l402"
commit=$(git rev-parse HEAD)
work=$(mktemp -d "${TMPDIR:-/tmp}/l402kit-release.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# checkout DIR: a clone of HEAD at DIR, with the last release's tag.
checkout() {
	git clone -q --no-hardlinks --no-checkout . "$1"
	git -C "$1" checkout -q --detach "$commit"
	if [ -f .release/baseline ]; then
		last=$(grep -E '^v[0-9]' .release/baseline | tail -n1 || true)
		if [ -n "$last" ]; then
			set -- "$1" $last
			if ! git -C "$1" rev-parse -q --verify "refs/tags/$2" >/dev/null &&
				git -C "$1" cat-file -e "$3^{commit}" 2>/dev/null; then
				git -C "$1" tag "$2" "$3"
			fi
		fi
	fi
}

# build SRC DST GOOS GOARCH: both commands for one platform.
build() {
	for c in $commands; do
		(cd "$1" && CGO_ENABLED=0 GOOS=$3 GOARCH=$4 GOFLAGS=-buildvcs=true \
			go build -trimpath -o "$2/$c-$3-$4" "./cmd/$c")
	done
}

checkout "$work/src"
rm -rf "$out"
mkdir -p "$out"
for p in $platforms; do
	echo "release: building $p"
	build "$work/src" "$out" "${p%/*}" "${p#*/}"
done
(cd "$out" && sha256sum -- * >SHA256SUMS)
echo "release: $out"
cat "$out/SHA256SUMS"

status=0
if [ "$(go env GOHOSTOS)/$(go env GOHOSTARCH)" = linux/amd64 ]; then
	for c in $commands; do
		v=$("$out/$c-linux-amd64" --version) || { echo "release: $c --version failed" >&2; status=1; continue; }
		first=$(echo "$v" | head -n1)
		if ! echo "$first" | grep -Eq "^$c v[0-9]+\.[0-9]+\.[0-9]+" || ! echo "$v" | grep -q "^commit $commit"; then
			echo "release: $c --version does not name a version and commit $commit:" >&2
			echo "$v" >&2
			status=1
		else
			echo "release: $c-linux-amd64 --version: $first, commit $commit"
		fi
	done
else
	echo "release: not on linux/amd64, the binaries' start is not checked here"
fi

if [ "${RELEASE_REPRO:-1}" != 0 ]; then
	echo "release: building linux/amd64 again in another directory with an empty build cache"
	checkout "$work/again/l402kit"
	mkdir -p "$work/again/out"
	GOCACHE="$work/cache" build "$work/again/l402kit" "$work/again/out" linux amd64
	for c in $commands; do
		if cmp -s "$out/$c-linux-amd64" "$work/again/out/$c-linux-amd64"; then
			echo "release: $c-linux-amd64 reproduced byte for byte"
		else
			echo "release: $c-linux-amd64 differs when built again: not reproducible" >&2
			status=1
		fi
	done
fi
exit $status
