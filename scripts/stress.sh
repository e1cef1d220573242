#!/usr/bin/env bash
# make stress: the flake hunt. Runs every package's tests again and again in
# shuffled order (go test -shuffle=on, -race), under CPU contention from
# stress-ng, with GOMAXPROCS=1 and then 2, until a time budget is spent.
#
# Rounds: the first runs every package with GOMAXPROCS=1, the second every
# package with GOMAXPROCS=2, then they alternate while the budget lasts
# (packages in a new random order each round). Each package runs
# STRESS_COUNT times per round (-count). The budget is a hard bound: at the
# deadline the package running is stopped and counted as cut, not failed.
#
# It passes when no test failed and both first rounds were complete, i.e.
# every package ran under both settings; a budget too short for that fails
# and says so. Every failure is listed with the -test.shuffle seed that
# replays its order:
#   GOMAXPROCS=N go test -race -shuffle=SEED ./pkg
#
# Settings (environment):
#   STRESS_TIME   budget, in Go duration units s/m/h (default 40m)
#   STRESS_COUNT  runs of each package's tests per round (default 1)
#   STRESS_PKGS   packages (default ./...)
#   STRESS_CPUS   stress-ng CPU workers (default: the number of CPUs)
#   STRESS_LOAD   percent load of each worker (default 60)
#   STRESS_LOG    directory for the logs (default: a new temporary one)
set -u
cd "$(dirname "$0")/.."

seconds() {
	case $1 in
	*h) echo $((${1%h} * 3600)) ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

budget=$(seconds "${STRESS_TIME:-40m}")
count=${STRESS_COUNT:-1}
cpus=${STRESS_CPUS:-$(nproc)}
load=${STRESS_LOAD:-60}
logdir=${STRESS_LOG:-$(mktemp -d "${TMPDIR:-/tmp}/l402kit-stress.XXXXXX")}
mkdir -p "$logdir"
# shellcheck disable=SC2086
pkgs=$(go list ${STRESS_PKGS:-./...}) || exit 1
command -v stress-ng >/dev/null 2>&1 || {
	echo "stress: stress-ng is not installed (make stress-deps installs it from Debian)" >&2
	exit 1
}

# Build each package's test binary once, before the clock starts, and run
# the binaries themselves, so the budget is spent running tests, not
# compiling and linking them again each round.
bindir=$logdir/bin
mkdir -p "$bindir"
echo "stress: building the test binaries into $bindir"
tested=""
for pkg in $pkgs; do
	name=$(echo "${pkg#github.com/l402kit/l402kit}" | tr '/' '_')
	go test -race -c -o "$bindir/$name.test" "$pkg" >"$logdir/build$name.log" 2>&1 || {
		echo "stress: building the tests of $pkg failed:" >&2
		cat "$logdir/build$name.log" >&2
		exit 1
	}
	# A package without tests makes no binary.
	[ -x "$bindir/$name.test" ] && tested="$tested $pkg"
done
pkgs=$tested

# The test containers (LND regtest) of this project, by the label .ci/run
# also cleans up by.
ours() {
	command -v docker >/dev/null 2>&1 || return 0
	docker ps -aq --no-trunc --filter label=org.l402kit.test=true 2>/dev/null | tr '\n' ' '
}

start=$(date +%s)
end=$((start + budget))
stress-ng --cpu "$cpus" --cpu-load "$load" --timeout "$((budget + 60))s" --quiet &
sng=$!
trap 'kill "$sng" 2>/dev/null; wait "$sng" 2>/dev/null' EXIT
echo "stress: budget ${budget}s, stress-ng --cpu $cpus --cpu-load $load, -count=$count per round, logs in $logdir"
echo "stress: load before: $(cut -d' ' -f1-3 /proc/loadavg)"

failures=0 runs=0 cut=0 round=0 full=0
summary=$logdir/failures.txt
: >"$summary"
while [ "$(date +%s)" -lt "$end" ]; do
	round=$((round + 1))
	procs=$(((round + 1) % 2 + 1)) # 1, 2, 1, 2, ...
	complete=1
	for pkg in $(printf '%s\n' $pkgs | shuf); do
		left=$((end - $(date +%s)))
		if [ "$left" -le 0 ]; then
			complete=0
			break
		fi
		name=$(echo "${pkg#github.com/l402kit/l402kit}" | tr '/' '_')
		log=$logdir/r$round-p$procs$name.log
		# As go test runs it: in the package's directory.
		dir=$(go list -f '{{.Dir}}' "$pkg")
		before=$(ours)
		(cd "$dir" && GOMAXPROCS=$procs timeout --kill-after=30 "$left" \
			"$bindir/$name.test" -test.shuffle=on -test.count="$count" -test.timeout=10m -test.paniconexit0) >"$log" 2>&1
		rc=$?
		case $rc in
		0) runs=$((runs + 1)) ;;
		124 | 137)
			cut=$((cut + 1))
			complete=0
			# A test binary killed mid-run cannot remove the containers it
			# started; remove those that appeared during its run.
			for c in $(ours); do
				case " $before " in *" $c "*) ;; *) docker rm -f "$c" >/dev/null 2>&1 || true ;; esac
			done
			echo "stress: round $round GOMAXPROCS=$procs $pkg cut by the budget"
			;;
		*)
			runs=$((runs + 1))
			failures=$((failures + 1))
			seed=$(grep -m1 -o -- '-test.shuffle [0-9]*' "$log" | cut -d' ' -f2)
			tests=$(grep -o -- '--- FAIL: [^ ]*' "$log" | cut -d' ' -f3 | sort -u | tr '\n' ' ')
			line="round $round GOMAXPROCS=$procs $pkg -test.shuffle=$seed failed: ${tests:-(no test named; see the log)} log: $log"
			echo "stress: FAIL $line"
			echo "$line" >>"$summary"
			;;
		esac
	done
	if [ "$complete" = 1 ] && [ "$round" -le 2 ]; then
		full=$((full + 1))
	fi
	echo "stress: round $round (GOMAXPROCS=$procs) ended at +$(($(date +%s) - start))s, load $(cut -d' ' -f1-3 /proc/loadavg)"
done

echo "stress: $round rounds, $runs package runs (each -count=$count), $cut cut by the budget, $failures failed, in $(($(date +%s) - start))s"
if [ "$failures" -gt 0 ]; then
	echo "stress: failures:"
	cat "$summary"
	exit 1
fi
if [ "$full" -lt 2 ]; then
	echo "stress: the budget did not cover every package under GOMAXPROCS=1 and 2; raise STRESS_TIME" >&2
	exit 1
fi
echo "stress: no failures"
