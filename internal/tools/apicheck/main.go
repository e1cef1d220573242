// Command apicheck guards the module's exported API: it compares every
// non-internal package with the last release and fails on an incompatible
// change that CHANGELOG.md does not record as breaking. `make api-check`
// runs it, and CI runs that.
//
// The last release is the last line of .release/baseline, "vX.Y.Z COMMIT":
// the commit, not the tag, so that a clone without tags (CI's) still knows
// it; the tag is a convenience for people. The baseline's source comes from
// git (git archive COMMIT), so the clone needs that commit: in a shallow
// clone apicheck fetches it from origin, or says what is missing.
//
// The comparison is golang.org/x/exp/cmd/apidiff in module mode, run with
// `go run` at a pinned version from the Go module proxy (no requirement in
// go.mod). A package whose API changed incompatibly passes only when the
// changelog's [Unreleased] section names it, in backquotes, under a
// "### Breaking" heading:
//
//	## [Unreleased]
//	### Breaking
//	- `proxy`: Config.Store is required.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Apidiff is the apidiff command run, pinned so that every run compares
// alike.
const Apidiff = "golang.org/x/exp/cmd/apidiff@v0.0.0-20261120182113-8801fbdfac81"

func main() {
	dir := flag.String("dir", ".", "the module's root directory (a git checkout)")
	flag.Parse()
	rep, err := check(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apicheck:", err)
		os.Exit(1)
	}
	fmt.Print(rep.String())
	if len(rep.Unrecorded()) > 0 {
		os.Exit(1)
	}
}

// Report is what changed incompatibly since the baseline, by package.
type Report struct {
	Release, Commit string
	// Changes maps a package's path within the module ("proxy",
	// "proxy/boltstore") to apidiff's messages about it.
	Changes map[string][]string
	// Recorded are the packages CHANGELOG.md names under Breaking.
	Recorded map[string]bool
}

// Unrecorded lists the changed packages the changelog does not name.
func (r *Report) Unrecorded() []string {
	var out []string
	for p := range r.Changes {
		if !r.Recorded[p] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (r *Report) String() string {
	var b strings.Builder
	if len(r.Changes) == 0 {
		fmt.Fprintf(&b, "apicheck: no incompatible change to the exported API since %s (%s)\n", r.Release, r.Commit)
		return b.String()
	}
	pkgs := make([]string, 0, len(r.Changes))
	for p := range r.Changes {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	fmt.Fprintf(&b, "apicheck: incompatible changes since %s (%s):\n", r.Release, r.Commit)
	for _, p := range pkgs {
		state := "recorded as breaking in CHANGELOG.md"
		if !r.Recorded[p] {
			state = "NOT recorded in CHANGELOG.md"
		}
		fmt.Fprintf(&b, "  %s (%s):\n", p, state)
		for _, m := range r.Changes[p] {
			fmt.Fprintf(&b, "    %s\n", m)
		}
	}
	if un := r.Unrecorded(); len(un) > 0 {
		fmt.Fprintf(&b, "apicheck: keep the API, or name each of %s under \"### Breaking\" in the [Unreleased] section of CHANGELOG.md with what a user must change\n", "`"+strings.Join(un, "`, `")+"`")
	}
	return b.String()
}

func check(dir string) (*Report, error) {
	modPath, err := output(dir, "go", "list", "-m")
	if err != nil {
		return nil, err
	}
	modPath = strings.TrimSpace(modPath)
	release, commit, err := readBaseline(filepath.Join(dir, ".release", "baseline"))
	if err != nil {
		return nil, err
	}
	if err := haveCommit(dir, commit); err != nil {
		return nil, fmt.Errorf("baseline %s: %w", release, err)
	}
	tmp, err := os.MkdirTemp("", "apicheck")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	base := filepath.Join(tmp, "base")
	if err := extract(dir, commit, base); err != nil {
		return nil, fmt.Errorf("baseline %s: %w", release, err)
	}
	exportData := filepath.Join(tmp, "base.zip")
	if _, err := output(base, "go", "run", Apidiff, "-m", "-w", exportData, modPath); err != nil {
		return nil, fmt.Errorf("the API of %s: %w", release, err)
	}
	diff, err := output(dir, "go", "run", Apidiff, "-m", "-incompatible", exportData, modPath)
	if err != nil {
		return nil, fmt.Errorf("comparing with %s: %w", release, err)
	}
	changes := parseChanges(diff, modPath)
	recorded, err := breakingPackages(filepath.Join(dir, "CHANGELOG.md"), modPath)
	if err != nil {
		return nil, err
	}
	return &Report{Release: release, Commit: commit, Changes: changes, Recorded: recorded}, nil
}

// readBaseline returns the last "vX.Y.Z COMMIT" line of path.
func readBaseline(path string) (release, commit string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("the last release: %w", err)
	}
	line := regexp.MustCompile(`^(v\d+\.\d+\.\d+\S*)\s+([0-9a-f]{40})$`)
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			return "", "", fmt.Errorf("%s: line %q is not \"vX.Y.Z <40-hex commit>\"", path, l)
		}
		release, commit = m[1], m[2]
	}
	if commit == "" {
		return "", "", fmt.Errorf("%s names no release", path)
	}
	return release, commit, nil
}

// haveCommit makes sure commit is in the clone, fetching it from origin
// when the clone is shallow.
func haveCommit(dir, commit string) error {
	if _, err := output(dir, "git", "cat-file", "-e", commit+"^{commit}"); err == nil {
		return nil
	}
	if _, err := output(dir, "git", "fetch", "--quiet", "--depth=1", "origin", commit); err != nil {
		return fmt.Errorf("commit %s is not in this clone and could not be fetched (clone with history, or fetch it): %w", commit, err)
	}
	return nil
}

// extract writes the tree of commit into dst.
func extract(dir, commit, dst string) error {
	cmd := exec.Command("git", "archive", "--format=tar", commit)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	terr := untar(out, dst)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git archive %s: %w: %s", commit, err, stderr.String())
	}
	return terr
}

func untar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dst, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(name, filepath.Clean(dst)+string(filepath.Separator)) {
			return fmt.Errorf("archive entry %q leaves the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// parseChanges groups apidiff's lines by package path within the module.
// apidiff writes "- ./proxy.Config.Store: removed" for a change inside a
// package and "- package github.com/.../proxy/x: removed" for a package.
func parseChanges(out, modPath string) map[string][]string {
	changes := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		msg, ok := strings.CutPrefix(sc.Text(), "- ")
		if !ok {
			continue
		}
		var pkg string
		if rest, ok := strings.CutPrefix(msg, "package "); ok {
			pkg, _, _ = strings.Cut(rest, ":")
			pkg = strings.TrimPrefix(strings.TrimPrefix(pkg, modPath), "/")
		} else {
			name, _, _ := strings.Cut(msg, ":")
			name = strings.TrimPrefix(name, "./")
			// The package path ends at the first dot after its last slash.
			slash := strings.LastIndex(name, "/")
			if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
				pkg = name[:slash+1+dot]
			} else {
				pkg = name
			}
		}
		changes[pkg] = append(changes[pkg], msg)
	}
	return changes
}

// breakingPackages reads the packages named in backquotes under
// "### Breaking" in the [Unreleased] section of the changelog.
func breakingPackages(path, modPath string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	inUnreleased, inBreaking := false, false
	quoted := regexp.MustCompile("`([^`]+)`")
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "## "):
			inUnreleased = strings.HasPrefix(strings.ToLower(l), "## [unreleased]")
			inBreaking = false
		case strings.HasPrefix(l, "### "):
			inBreaking = inUnreleased && strings.EqualFold(strings.TrimSpace(l[4:]), "Breaking")
		case inBreaking:
			for _, m := range quoted.FindAllStringSubmatch(l, -1) {
				names[strings.TrimPrefix(strings.TrimPrefix(m[1], modPath), "/")] = true
			}
		}
	}
	return names, nil
}

// output runs a command in dir and returns its standard output; a failure
// carries its standard error.
func output(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
