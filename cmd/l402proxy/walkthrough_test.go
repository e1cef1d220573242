package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoWalkthroughRuns starts the demo as `go run ./cmd/l402proxy` does
// (memory backend, built-in upstream), reads the walk-through it prints,
// and runs its L402 and Payment flows with bash and curl as a reader
// would: each must end in the paid body, and the Payment credential sent a
// second time must be refused as used.
func TestDemoWalkthroughRuns(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "base64", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not installed", tool)
		}
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--state", "memory"}, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("l402proxy: %v", err)
		}
	})
	var text string
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, _ := os.ReadFile(out.Name())
		if text = string(b); strings.Contains(text, "# optional route") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no walk-through printed:\n%s", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The commands from "Try the 402 flow" up to the optional route, the
	// comments and the first bare curl (it prints a whole 402) left out.
	start := strings.Index(text, "Try the 402 flow")
	end := strings.Index(text, "# optional route")
	if start < 0 || end < start || !strings.Contains(text[start:end], "Authorization: Payment") {
		t.Fatalf("walk-through lacks the L402 or the Payment flow:\n%s", text)
	}
	var script []string
	for i, line := range strings.Split(text[start:end], "\n")[1:] {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || i < 4 && strings.HasPrefix(line, "curl -si") {
			continue
		}
		script = append(script, line)
	}
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", strings.Join(script, "\n"))
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walk-through failed: %v\n%s\nscript:\n%s", err, got, strings.Join(script, "\n"))
	}
	s := string(got)
	if n := strings.Count(s, "paid content for /paid/article"); n != 2 {
		t.Errorf("paid body %d times, want 2 (L402, then Payment):\n%s", n, s)
	}
	if !regexp.MustCompile(`(?mi)^Payment-Receipt: \S+`).MatchString(s) {
		t.Errorf("no Payment-Receipt on the charge's answer:\n%s", s)
	}
	if !strings.Contains(s, `"type":"https://paymentauth.org/problems/verification-failed"`) || !strings.Contains(s, "(used)") {
		t.Errorf("the replayed charge was not refused as used:\n%s", s)
	}
}
