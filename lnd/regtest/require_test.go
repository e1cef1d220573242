package regtest

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recordingTB records how Require ended the test instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper() {}

// Skipf and Fatalf end the goroutine, as testing's do.
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// require runs Require on its own goroutine, which Skipf or Fatalf end.
func require(t *testing.T, err error) *recordingTB {
	r := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Require(r, err)
	}()
	<-done
	return r
}

// TestRequire checks Require's decisions. The path through a real missing
// engine cannot run on a machine that has one: testcontainers falls back to
// the default socket whatever DOCKER_HOST says.
func TestRequire(t *testing.T) {
	noDocker := fmt.Errorf("%w: Cannot connect to the Docker daemon at unix:///var/run/docker.sock", ErrNoDocker)
	other := errors.New("start alice: boom")

	t.Setenv(EnvRequire, "")
	r := require(t, noDocker)
	if r.failed != "" || !strings.Contains(r.skipped, "Cannot connect to the Docker daemon") || !strings.Contains(r.skipped, EnvRequire) {
		t.Fatalf("no Docker, not required: skipped %q, failed %q", r.skipped, r.failed)
	}
	t.Logf("skip message: %s", r.skipped)

	r = require(t, fmt.Errorf("%w: l402kit/lnd:v0.20.0-beta missing", ErrNoImages))
	if r.failed != "" || !strings.Contains(r.skipped, "l402kit/lnd:v0.20.0-beta missing") {
		t.Fatalf("no images, not required: skipped %q, failed %q", r.skipped, r.failed)
	}

	r = require(t, other)
	if r.skipped != "" || !strings.Contains(r.failed, "boom") {
		t.Fatalf("other error: skipped %q, failed %q", r.skipped, r.failed)
	}

	t.Setenv(EnvRequire, "1")
	r = require(t, noDocker)
	if r.skipped != "" || !strings.Contains(r.failed, "Cannot connect") {
		t.Fatalf("no Docker, required: skipped %q, failed %q", r.skipped, r.failed)
	}

	r = require(t, nil)
	if r.skipped != "" || r.failed != "" {
		t.Fatalf("nil error: skipped %q, failed %q", r.skipped, r.failed)
	}
}
