// Package version tells what a binary was built from: the module version
// (a release tag such as v0.1.0, or a pseudo-version between releases), the
// commit, and the build settings, read from debug.ReadBuildInfo. The
// commands print it for --version and l402proxy exports it on /metrics.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is what the Go toolchain recorded in the binary.
type Info struct {
	// Version is the main module's version: the tag the commit carries
	// (v0.1.0), a pseudo-version after it (v0.1.1-0.20261205162000-7706d55...),
	// "+dirty" appended when the tree had uncommitted changes, or "(devel)"
	// when the build recorded no version control (go run, go test).
	Version string
	// Commit and Time are the commit and its time (vcs.revision, vcs.time);
	// empty without version control information.
	Commit, Time string
	// Modified is vcs.modified: the tree had uncommitted changes.
	Modified bool
	// GoVersion is the toolchain that built the binary.
	GoVersion string
	// Settings are the build settings: -trimpath, CGO_ENABLED, GOOS,
	// GOARCH, -ldflags, vcs.*, ...
	Settings []debug.BuildSetting
}

// Read returns the Info of the running binary.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "(unknown)", GoVersion: runtime.Version()}
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo extracts an Info from bi.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion, Settings: bi.Settings}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is the text of --version for the command named cmd: its version,
// the commit, the toolchain and platform, then the build settings one a
// line.
func (in Info) String(cmd string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", cmd, in.Version)
	commit := in.Commit
	if commit == "" {
		commit = "unknown (built without version control information)"
	}
	if in.Time != "" {
		commit += " (" + in.Time + ")"
	}
	if in.Modified {
		commit += " with uncommitted changes"
	}
	fmt.Fprintf(&b, "commit %s\n", commit)
	goos, goarch := runtime.GOOS, runtime.GOARCH
	fmt.Fprintf(&b, "built with %s for %s/%s\n", in.GoVersion, goos, goarch)
	for _, s := range in.Settings {
		if strings.HasPrefix(s.Key, "vcs") {
			continue // said above
		}
		fmt.Fprintf(&b, "  %s=%s\n", s.Key, s.Value)
	}
	return b.String()
}

// Collector is a gauge, namespace_build_info, that is always 1 and carries
// the version, commit and Go version as labels, so a dashboard can show
// which build each instance runs.
func (in Info) Collector(namespace string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels say which build this is (module version, commit, Go version).",
		ConstLabels: prometheus.Labels{
			"version":   in.Version,
			"commit":    in.Commit,
			"goversion": in.GoVersion,
		},
	})
	g.Set(1)
	return g
}
