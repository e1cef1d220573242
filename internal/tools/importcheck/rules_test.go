package importcheck

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

type rule struct {
	pkgs []string // the packages it is for
	may  []string // what they may import of the module, besides their own
	why  string
}

// The import rules of ARCHITECTURE.md, as data. Paths are relative to the
// module; "x/..." is x and every package below it. A package takes the
// first rule whose pkgs match it, and may import, of the module's own
// packages, only itself, what lies below it and what may lists.
// Tests are not held to these rules (an adapter's tests may run on the
// memory node, a fake's on its adapter).
var rules = []rule{
	{[]string{"bolt11", "bolt12", "deploy"}, nil,
		"the codecs and the deploy files stand on nothing of the module"},
	{[]string{"backend"}, []string{"bolt11", "bolt12"},
		"backend imports no adapter and nothing from a node's library"},
	{[]string{"internal/plumbing/..."}, []string{"backend", "bolt11", "bolt12", "internal/plumbing/..."},
		"plumbing is below the adapters"},
	{[]string{"conformance/..."}, []string{"backend", "bolt11", "bolt12"},
		"the driver contract sits on the bottom floor"},
	{[]string{"lnd/regtest/..."}, []string{"backend", "bolt11", "conformance", "lnd", "internal/plumbing/...", "internal/testenv/..."},
		"LND regtest nodes are a test environment for the lnd adapter"},
	{[]string{"memory/...", "lnd/...", "cln/...", "eclair/...", "phoenixd/...", "lnurl/...", "nwc/..."},
		[]string{"backend", "bolt11", "bolt12", "internal/plumbing/..."},
		"an adapter imports backend, never another adapter"},
	{[]string{"l402/..."}, []string{"backend", "bolt11", "l402"},
		"l402 imports backend only for its types and the Payer interface"},
	{[]string{"proxy/proxytest/..."}, []string{"backend", "bolt11", "l402/...", "proxy", "conformance"},
		"the 402 flow suite runs over a conformance harness, on no adapter"},
	{[]string{"proxy/..."}, []string{"backend", "bolt11", "l402/...", "proxy"},
		"proxy imports backend and l402, never an adapter"},
	{[]string{"internal/fakes/..."}, []string{"backend", "bolt11", "bolt12", "internal/plumbing/...", "internal/fakes/..."},
		"fakes are nodes run on the memory node (internal/plumbing/memnode), never on an adapter"},
	{[]string{"internal/testenv/..."}, []string{"backend", "bolt11", "deploy", "internal/plumbing/...", "internal/testenv/..."},
		"test environments start real servers; they import no adapter"},
	{[]string{"internal/tools/...", "cmd/..."}, []string{"..."},
		"tools and binaries are the top floor"},
}

func match(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, pkg) })
}

// goList runs go list in the checkout and returns its lines.
func goList(t *testing.T, root string, args ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("no go command: %v", err)
	}
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func checkout(t *testing.T) (root, module string) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	root = filepath.Clean(filepath.Join(filepath.Dir(here), "..", "..", ".."))
	mod := goList(t, root, "-m")
	return root, mod[0]
}

// TestImportRules checks every package's imports against the rules, and
// with go list -deps that the bottom floor (backend, conformance) pulls in
// nothing of the module above it.
func TestImportRules(t *testing.T) {
	root, module := checkout(t)
	rel := func(p string) (string, bool) {
		if p == module {
			return ".", true
		}
		return strings.CutPrefix(p, module+"/")
	}
	for _, line := range goList(t, root, "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...") {
		f := strings.Fields(line)
		pkg, _ := rel(f[0])
		i := slices.IndexFunc(rules, func(r rule) bool { return matchAny(r.pkgs, pkg) })
		if i < 0 {
			t.Errorf("%s is under no import rule: give it a floor in ARCHITECTURE.md and in this test's rules", pkg)
			continue
		}
		r := rules[i]
		for _, imp := range f[1:] {
			ip, ours := rel(imp)
			if !ours || ip == pkg || strings.HasPrefix(ip, pkg+"/") || matchAny(r.may, ip) {
				continue
			}
			t.Errorf("%s imports %s: %s", pkg, ip, r.why)
		}
	}

	// The same rules for the bottom floor, read transitively.
	for pkg, may := range map[string][]string{
		"backend":     {"backend", "bolt11", "bolt12"},
		"conformance": {"conformance", "backend", "bolt11", "bolt12"},
	} {
		for _, dep := range goList(t, root, "-deps", "./"+pkg) {
			if d, ours := rel(dep); ours && !slices.Contains(may, d) {
				t.Errorf("go list -deps ./%s has %s: it may reach only %v", pkg, d, may)
			}
		}
	}
}

// TestArchitecturePicture checks that the package picture in ARCHITECTURE.md
// names the packages go list finds: every package is named (a name ending
// in /... stands for a folder's packages), and every name is a package.
func TestArchitecturePicture(t *testing.T) {
	root, module := checkout(t)
	f, err := os.Open(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		names   []string
		in, got bool
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !got && line == "```packages":
			in, got = true, true
		case in && line == "```":
			in = false
		case in:
			for _, w := range strings.Fields(line) {
				if strings.HasSuffix(w, "/") || strings.HasSuffix(w, "/...") {
					names = append(names, w)
				}
			}
		}
	}
	if !got || len(names) == 0 {
		t.Fatal("ARCHITECTURE.md has no ```packages block naming the packages")
	}
	var pkgs []string
	for _, p := range goList(t, root, "./...") {
		pkgs = append(pkgs, strings.TrimPrefix(strings.TrimPrefix(p, module), "/"))
	}
	named := func(pkg string) bool {
		for _, n := range names {
			if n == pkg+"/" || match(n, pkg) {
				return true
			}
		}
		return false
	}
	for _, p := range pkgs {
		if !named(p) {
			t.Errorf("package %s is not in ARCHITECTURE.md's picture", p)
		}
	}
	for _, n := range names {
		if strings.HasSuffix(n, "/...") {
			if !slices.ContainsFunc(pkgs, func(p string) bool { return match(n, p) }) {
				t.Errorf("ARCHITECTURE.md names %s, which holds no package", n)
			}
			continue
		}
		if !slices.Contains(pkgs, strings.TrimSuffix(n, "/")) {
			t.Errorf("ARCHITECTURE.md names %s, which is no package", n)
		}
	}
}
