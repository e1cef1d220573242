package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// total is requests over time across all rounds.
func (t *target) total() float64 {
	var n, us int64
	for _, r := range t.runs {
		n += r.Requests
		us += r.DurationUS
	}
	return float64(n) / (float64(us) / 1e6)
}

func (t *target) each(f func(wrkResult) float64) []float64 {
	var xs []float64
	for _, r := range t.runs {
		xs = append(xs, f(r))
	}
	return xs
}

func join(xs []float64, format string) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf(format, x))
	}
	return strings.Join(s, " ")
}

// cpuPerRequest is the CPU time its processes used per request, in µs,
// over all rounds or (round >= 0) in one.
func (t *target) cpuPerRequest(round int) float64 {
	var cpu float64
	var n int64
	for i, r := range t.runs {
		if round < 0 || round == i {
			cpu += t.cpu[i]
			n += r.Requests
		}
	}
	return cpu / float64(n) * 1e6
}

func printThroughput(out io.Writer, targets []*target) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\treq/s\tper round\tp50 µs\tp99 µs\tCPU µs/req\t")
	for _, t := range targets {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.0f\t%.0f\t%.0f\t\n", t.name, t.total(), join(t.each(wrkResult.rps), "%.0f"),
			median(t.each(func(r wrkResult) float64 { return r.P50 })), median(t.each(func(r wrkResult) float64 { return r.P99 })),
			t.cpuPerRequest(-1))
	}
	tw.Flush()
	fmt.Fprintln(out, "req/s: all rounds' requests over their time; p50, p99: median over the rounds of wrk's percentiles;")
	fmt.Fprintln(out, "CPU µs/req: user+system time of the target's own processes (nginx: with its l402proxy) per request, upstream and wrk excluded")

	plain, gate := targets[0], targets[1]
	ratios := func(a *target) []float64 {
		var xs []float64
		for i := range a.runs {
			xs = append(xs, a.runs[i].rps()/plain.runs[i].rps())
		}
		return xs
	}
	cpuRatios := func(a *target) []float64 {
		var xs []float64
		for i := range a.runs {
			xs = append(xs, plain.cpuPerRequest(i)/a.cpuPerRequest(i))
		}
		return xs
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "same-run comparison\tper round\tmedian\toverall\ttarget\t")
	row := func(name string, per []float64, overall float64, target string, met bool) {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%s %s\t\n", name, join(per, "%.2f"), median(per), overall, target, verdict(met))
	}
	for _, t := range targets[1:] {
		if t.metered {
			// Against the plain paid route: what drawing from a balance
			// costs on top of checking a token.
			var r, c []float64
			for i := range t.runs {
				r = append(r, t.runs[i].rps()/gate.runs[i].rps())
				c = append(c, gate.cpuPerRequest(i)/t.cpuPerRequest(i))
			}
			row(t.name+" / l402proxy valid token, req/s", r, t.total()/gate.total(), ">= 0.9", median(r) >= 0.9)
			row("  the same by CPU per request", c, gate.cpuPerRequest(-1)/t.cpuPerRequest(-1), ">= 0.9", median(c) >= 0.9)
			continue
		}
		want := 1.5
		if t == gate {
			want = 0.95
		}
		r := ratios(t)
		row(t.name+" / plain, req/s", r, t.total()/plain.total(), fmt.Sprintf(">= %.2g", want), median(r) >= want)
		c := cpuRatios(t)
		row("  the same by CPU per request", c, plain.cpuPerRequest(-1)/t.cpuPerRequest(-1), fmt.Sprintf(">= %.2g", want), median(c) >= want)
		if t == gate {
			var added []float64
			for i := range gate.runs {
				added = append(added, (gate.runs[i].P99-plain.runs[i].P99)/1000)
			}
			row("l402proxy p99 - plain p99, ms", added, median(added), "< 1", median(added) < 1)
		}
	}
	tw.Flush()
	fmt.Fprintln(out, "verdicts read the median of the rounds; \"by CPU per request\" is plain's CPU per request over the target's,")
	fmt.Fprintln(out, "the req/s ratio each would reach with the CPU to itself, which other load on the machine moves far less than req/s")
}

func verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(MISSED)"
}

// machine describes where and when the run happens, for the README table.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	wrkVersion := "?"
	if outb, _ := exec.Command("wrk", "--version").CombinedOutput(); len(outb) > 0 {
		wrkVersion, _, _ = strings.Cut(string(outb), "Copyright")
		wrkVersion = strings.TrimSpace(wrkVersion)
	}
	return fmt.Sprintf("make bench, %s: %d CPUs (%s), %s, %s, load average %s",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpu, runtime.Version(), wrkVersion, loadavg())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
