package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// state rotate-master replaces the state file's master secret: a token
// sold before is refused after the restart, one sold after is served, and
// a running proxy's file cannot be rotated under it.
func TestRotateMaster(t *testing.T) {
	up := upstream(t)
	addr := freeAddr(t)
	base := "http://" + addr
	state := filepath.Join(t.TempDir(), "state.db")
	args := []string{"--backend", "memory://", "--upstream", up, "--state", state, "--forward-auth", "off"}
	p := startProxy(t, addr, nil, args...)
	old := buy(t, base, "/x", base)
	if st, _ := get(t, base+"/x", old); st != http.StatusOK {
		t.Fatalf("token: %d", st)
	}
	if out, err := runMain(t, "state", "rotate-master", "--state", state); err == nil || !strings.Contains(out, "stop it first") {
		t.Fatalf("rotate-master on the file of a running proxy: %v\n%s", err, out)
	}
	p.stop(t)
	out, err := runMain(t, "state", "rotate-master", "--state", state)
	if err != nil || !strings.Contains(out, "master secret replaced") {
		t.Fatalf("rotate-master: %v\n%s", err, out)
	}
	p = startProxy(t, addr, nil, args...)
	defer p.stop(t)
	if st, _ := get(t, base+"/x", old); st != http.StatusPaymentRequired {
		t.Fatalf("token sold under the old secret: %d, want 402", st)
	}
	fresh := buy(t, base, "/x", base)
	if st, _ := get(t, base+"/x", fresh); st != http.StatusOK {
		t.Fatalf("token sold under the new secret: %d", st)
	}
}
