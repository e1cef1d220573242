package version

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// A release build: the tag, the commit and the settings come out as the
// toolchain recorded them.
func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/l402kit/l402kit", Version: "v0.1.0"},
		Settings: []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "CGO_ENABLED", Value: "0"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "5fa69dd6178dcc7f36bed4a1f3b4e312d9a6c58c"},
			{Key: "vcs.time", Value: "2026-12-05T16:45:50Z"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	in := FromBuildInfo(bi)
	if in.Version != "v0.1.0" || in.Commit != "5fa69dd6178dcc7f36bed4a1f3b4e312d9a6c58c" || in.Time != "2026-12-05T16:45:50Z" || in.Modified {
		t.Fatalf("FromBuildInfo: %+v", in)
	}
	got := in.String("l402proxy")
	for _, want := range []string{
		"l402proxy v0.1.0\n",
		"commit 5fa69dd6178dcc7f36bed4a1f3b4e312d9a6c58c (2026-12-05T16:45:50Z)\n",
		"built with go1.26.8 for ",
		"  -trimpath=true\n",
		"  CGO_ENABLED=0\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("--version text lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "vcs.revision") {
		t.Errorf("--version text repeats the vcs settings:\n%s", got)
	}
}

// A build from a tree with uncommitted changes says so; one without
// version control information says that instead of a commit.
func TestModifiedAndUnknown(t *testing.T) {
	in := FromBuildInfo(&debug.BuildInfo{Main: debug.Module{Version: "v0.1.1-0.20261205164550-5fa69dd6178d+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "5fa69dd6178d"}, {Key: "vcs.modified", Value: "true"}}})
	if s := in.String("l402"); !strings.Contains(s, "commit 5fa69dd6178d with uncommitted changes\n") {
		t.Errorf("modified build: %s", s)
	}
	in = FromBuildInfo(&debug.BuildInfo{})
	if s := in.String("l402"); !strings.HasPrefix(s, "l402 (devel)\ncommit unknown") {
		t.Errorf("build without version control: %s", s)
	}
}

func TestCollector(t *testing.T) {
	in := Info{Version: "v0.1.0", Commit: "5fa69dd6178d", GoVersion: "go1.26.8"}
	reg := prometheus.NewRegistry()
	reg.MustRegister(in.Collector("l402proxy"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "l402proxy_build_info" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v", mfs)
	}
	m := mfs[0].GetMetric()[0]
	if m.GetGauge().GetValue() != 1 {
		t.Errorf("build_info = %v, want 1", m.GetGauge().GetValue())
	}
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "v0.1.0" || labels["commit"] != "5fa69dd6178d" || labels["goversion"] != "go1.26.8" || len(labels) != 3 {
		t.Errorf("labels %v", labels)
	}
}
