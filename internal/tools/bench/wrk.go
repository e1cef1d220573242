package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/internal/tools/childproc"
)

// wrkScript sets the request's headers from the arguments after "--"
// (Name: value, each) and prints wrk's own figures as one JSON line, so
// nothing has to be read back from its human-oriented text. It defines no
// response function: wrk would then parse every response in Lua, which
// costs the load generator CPU the servers share.
const wrkScript = `
function init(args)
  for _, h in ipairs(args) do
    local name, value = h:match("^([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

// wrkChallengeScript drives the challenge path: each request comes from
// one of 1,000 client addresses (X-Forwarded-For, which the proxy believes
// from loopback, a trusted forwarder by default), so the per-client challenge limit (120 a minute)
// is not what is measured, and it counts answers other than 402.
const wrkChallengeScript = `
local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  unexpected = 0
  n = 0
end

function request()
  n = n + 1
  local i = n % 1000
  return wrk.format(nil, nil, {["X-Forwarded-For"] = string.format("10.%d.%d.%d", 1 + (i % 7), math.floor(i / 7) % 250, 1 + math.floor(i / 1750))})
end

function response(status, headers, body)
  if status ~= 402 then unexpected = unexpected + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("unexpected") end
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"unexpected":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

// wrkResult is one wrk run.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Non2xx     int64   `json:"non2xx"`
	Unexpected int64   `json:"unexpected"`
	Connect    int64   `json:"connect"`
	Read       int64   `json:"read"`
	Write      int64   `json:"write"`
	Timeout    int64   `json:"timeout"`
	P50        float64 `json:"p50_us"`
	P99        float64 `json:"p99_us"`
}

func (r wrkResult) rps() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

type wrkRunner struct {
	bin              string
	threads, conns   int
	script, chScript string // paths
}

func newWrkRunner(dir string, threads, conns int) (*wrkRunner, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return nil, fmt.Errorf("wrk not found (Debian package wrk; scripts/ci-deps.sh installs it): %w", err)
	}
	w := &wrkRunner{bin: bin, threads: threads, conns: conns,
		script: filepath.Join(dir, "bench.lua"), chScript: filepath.Join(dir, "challenge.lua")}
	if err := os.WriteFile(w.script, []byte(wrkScript), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.chScript, []byte(wrkChallengeScript), 0o644); err != nil {
		return nil, err
	}
	return w, nil
}

// run drives url for d and checks every answer was 2xx (wantStatus 200) or
// 402 (wantStatus 402, challenge script).
func (w *wrkRunner) run(ctx context.Context, url string, d time.Duration, wantStatus int, headers ...string) (wrkResult, error) {
	script := w.script
	if wantStatus == 402 {
		script = w.chScript
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-t" + strconv.Itoa(w.threads), "-c" + strconv.Itoa(w.conns), "-d" + strconv.Itoa(secs) + "s",
		"--timeout", "5s", "--latency", "-s", script, url}
	if len(headers) > 0 {
		args = append(append(args, "--"), headers...)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+15)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, args...)
	cmd.SysProcAttr = childproc.Attr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", url, err, out)
	}
	return parseWrk(url, out, wantStatus)
}

// parseWrk reads the figures the scripts print and checks the run: socket
// errors fail it (a proxy that drops connections is not measured, it is
// broken), and so does any answer other than the wanted status.
func parseWrk(url string, out []byte, wantStatus int) (wrkResult, error) {
	var res wrkResult
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(line, "BENCH "); ok {
			if err := json.Unmarshal([]byte(j), &res); err != nil {
				return res, fmt.Errorf("wrk %s: reading its figures: %w", url, err)
			}
			found = true
		}
	}
	if !found {
		return res, fmt.Errorf("wrk %s printed no figures:\n%s", url, out)
	}
	if res.Requests == 0 {
		return res, fmt.Errorf("wrk %s: no request completed:\n%s", url, out)
	}
	if n := res.Connect + res.Read + res.Write + res.Timeout; n > 0 {
		return res, fmt.Errorf("wrk %s: %d socket errors (connect %d, read %d, write %d, timeout %d)", url, n, res.Connect, res.Read, res.Write, res.Timeout)
	}
	switch {
	case wantStatus == 200 && res.Non2xx > 0:
		return res, fmt.Errorf("wrk %s: %d of %d answers were not 2xx/3xx", url, res.Non2xx, res.Requests)
	case wantStatus == 402 && res.Unexpected > 0:
		return res, fmt.Errorf("wrk %s: %d of %d answers were not 402", url, res.Unexpected, res.Requests)
	}
	return res, nil
}
