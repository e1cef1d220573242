package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckCatchesBrokenAPI runs the check on a small module in a git
// repository of its own: a release, then an exported function whose
// signature is broken on purpose. The check must fail naming the package
// until the changelog records the break, and must pass a compatible
// addition without any entry. It runs the real apidiff from the module
// proxy, as CI does.
func TestCheckCatchesBrokenAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs apidiff through go run (a download on first use)")
	}
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write("go.mod", "module example.org/apitest\n\ngo 1.26\n")
	write("price/price.go", "// Package price is a test package.\npackage price\n\n// Of returns the price of n units.\nfunc Of(n int) int { return 10 * n }\n")
	write("internal/hidden/hidden.go", "package hidden\n\nfunc Gone() {}\n")
	changelog := "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-12-05\n\n### Added\n- `price`.\n"
	write("CHANGELOG.md", changelog)
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "v0.1.0")
	write(".release/baseline", "# release commit\nv0.1.0 "+git("rev-parse", "HEAD")+"\n")

	rep, err := check(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Changes) != 0 || len(rep.Unrecorded()) != 0 {
		t.Fatalf("unchanged API: %s", rep)
	}

	// A compatible addition, and an internal package removed: no entry
	// needed.
	write("price/more.go", "package price\n\n// Twice is new.\nfunc Twice(n int) int { return 2 * n }\n")
	os.RemoveAll(filepath.Join(dir, "internal"))
	if rep, err = check(dir); err != nil || len(rep.Changes) != 0 {
		t.Fatalf("compatible change: %v %s", err, rep)
	}

	// The deliberate break: Of takes a second argument.
	write("price/price.go", "// Package price is a test package.\npackage price\n\n// Of returns the price of n units at unit u.\nfunc Of(n, u int) int { return u * n }\n")
	if rep, err = check(dir); err != nil {
		t.Fatal(err)
	}
	if got := rep.Unrecorded(); len(got) != 1 || got[0] != "price" {
		t.Fatalf("broken API: unrecorded %v, want [price]; report:\n%s", got, rep)
	}
	if msgs := rep.Changes["price"]; len(msgs) != 1 || !strings.HasPrefix(msgs[0], "./price.Of: changed from func(int) int to func(int, int) int") {
		t.Errorf("apidiff's message: %q", msgs)
	}
	if s := rep.String(); !strings.Contains(s, "NOT recorded") || !strings.Contains(s, "`price`") {
		t.Errorf("report does not say what to do:\n%s", s)
	}

	// Recorded elsewhere than under Unreleased's Breaking: still a failure.
	write("CHANGELOG.md", strings.Replace(changelog, "## [Unreleased]\n", "## [Unreleased]\n\n### Changed\n- `price`: Of takes a unit price.\n", 1))
	if rep, err = check(dir); err != nil || len(rep.Unrecorded()) != 1 {
		t.Fatalf("break listed under Changed, not Breaking: %v %s", err, rep)
	}
	// Recorded as breaking: passes.
	write("CHANGELOG.md", strings.Replace(changelog, "## [Unreleased]\n", "## [Unreleased]\n\n### Breaking\n- `price`: Of takes a unit price.\n", 1))
	if rep, err = check(dir); err != nil || len(rep.Unrecorded()) != 0 || len(rep.Changes["price"]) != 1 {
		t.Fatalf("break recorded in the changelog: %v %s", err, rep)
	}
	if s := rep.String(); !strings.Contains(s, "recorded as breaking") {
		t.Errorf("report:\n%s", s)
	}

	// A baseline commit the clone does not have is an error that says so,
	// never a pass.
	write(".release/baseline", "v0.1.0 0123456789abcdef0123456789abcdef01234567\n")
	if _, err := check(dir); err == nil || !strings.Contains(err.Error(), "not in this clone") {
		t.Fatalf("missing baseline commit: %v", err)
	}
}

func TestParseChanges(t *testing.T) {
	out := "- ./proxy.Config.Store: removed\n- ./proxy/boltstore.Open: changed from func(string) to func(string, int)\n- package github.com/l402kit/l402kit/lnd/regtest: removed\n- ./bolt11.(*Invoice).Amount: removed\n"
	got := parseChanges(out, "github.com/l402kit/l402kit")
	for pkg, n := range map[string]int{"proxy": 1, "proxy/boltstore": 1, "lnd/regtest": 1, "bolt11": 1} {
		if len(got[pkg]) != n {
			t.Errorf("%s: %v", pkg, got[pkg])
		}
	}
	if len(got) != 4 {
		t.Errorf("packages %v", got)
	}
}
