package main

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/proxy/boltstore"
)

// runMain runs l402proxy with args in a child process until it exits, and
// returns its output and exit error.
func runMain(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "L402PROXY_AS_MAIN="+strings.Join(args, " "))
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("l402proxy %v still running after 60 s:\n%s", args, out)
	}
	return string(out), err
}

// A state file damaged or emptied under a stopped proxy stops the next
// start with a message naming the file and what to do; state check says
// the same; --new-state starts an empty store only where the file is gone
// or empty, and the tokens sold before are then refused, as the operator
// was told.
func TestStateFileFailsLoudly(t *testing.T) {
	up := upstream(t)
	addr := freeAddr(t)
	base := "http://" + addr
	state := filepath.Join(t.TempDir(), "state.db")
	args := []string{"--backend", "memory://", "--upstream", up, "--state", state, "--forward-auth", "off"}
	p := startProxy(t, addr, nil, args...)
	auth := buy(t, base, "/x", base)
	if st, _ := get(t, base+"/x", auth); st != http.StatusOK {
		t.Fatalf("token: %d", st)
	}
	p.stop(t)
	out, err := runMain(t, "state", "check", "--state", state)
	// The token sold left no record (its root key is derived from the
	// file's master secret), so the check has nothing more to count.
	if err != nil || !strings.Contains(out, "sound") {
		t.Fatalf("state check of a sound file: %v\n%s", err, out)
	}
	good, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, len(good))
	rand.Read(random)
	for _, tc := range []struct {
		name    string
		content []byte // nil: the file is removed
		want    string
		newOK   bool // --new-state starts an empty store
	}{
		{"truncated", good[:len(good)/3], "corrupt", false},
		{"zeroed", make([]byte, len(good)), "corrupt", false},
		{"random", random, "corrupt", false},
		{"foreign", []byte("{\"not\": \"a store\"}\n"), "corrupt", false},
		{"empty", []byte{}, "missing or empty", true},
		{"missing", nil, "missing or empty", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(state)
			if tc.content != nil {
				if err := os.WriteFile(state, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out, err := runMain(t, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
			if err == nil || !strings.Contains(out, state) || !strings.Contains(out, tc.want) || strings.Contains(out, "panic") {
				t.Fatalf("start on a %s state file: %v, want an error naming %s and %q:\n%s", tc.name, err, state, tc.want, out)
			}
			if !strings.Contains(out, "backup") {
				t.Fatalf("the error does not say to restore the backup:\n%s", out)
			}
			out, err = runMain(t, "state", "check", "--state", state)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("state check of a %s file: %v\n%s", tc.name, err, out)
			}
			if !tc.newOK {
				out, err := runMain(t, append([]string{"--listen", "127.0.0.1:0", "--new-state"}, args...)...)
				if err == nil || !strings.Contains(out, tc.want) {
					t.Fatalf("--new-state replaced a %s file: %v\n%s", tc.name, err, out)
				}
				return
			}
			p := startProxy(t, addr, nil, append([]string{"--new-state"}, args...)...)
			if st, _ := get(t, base+"/x", auth); st != http.StatusPaymentRequired {
				t.Fatalf("a token of the lost store on the new one: %d", st)
			}
			p.stop(t)
			// The new store is now the one the marker names: it opens
			// without the flag.
			startProxy(t, addr, nil, args...).stop(t)
		})
	}
	// The marker was kept throughout and names the last store.
	if m, err := os.ReadFile(boltstore.MarkerPath(state)); err != nil || !bytes.Contains(m, []byte("id ")) {
		t.Fatalf("marker: %q %v", m, err)
	}
}
