package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// rssBytes is the resident set size of process pid (Linux /proc).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

// userHZ is the unit of /proc/PID/stat's CPU times: 100 on every Linux
// architecture Go runs on (USER_HZ, getconf CLK_TCK).
const userHZ = 100

// cpuSeconds is the CPU time (user and system) the processes pids and
// their children still running have used so far. nginx's workers are
// children of the pid the bench started, and their time counts.
func cpuSeconds(pids []int) (float64, error) {
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, t, err := procStat(pid)
		if err != nil {
			continue // gone meanwhile
		}
		if want[pid] || want[ppid] {
			ticks += t
		}
	}
	return float64(ticks) / userHZ, nil
}

// procStat reads a process's parent and its user+system CPU ticks.
func procStat(pid int) (ppid int, ticks int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may hold spaces: fields
	// are counted after its closing one.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, 0, errors.New("short stat")
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, err
	}
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, 0, err
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	return ppid, utime + stime, err
}
