package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --version prints the build and exits without opening a backend or a
// state file (the one given here could not be created).
func TestVersionFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := run(context.Background(), []string{"--version", "--backend", "nosuch://", "--state", "/nonexistent/dir/state.db"}, out); err != nil {
		t.Fatalf("--version: %v", err)
	}
	got, _ := os.ReadFile(path)
	lines := strings.Split(string(got), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "l402proxy ") || !strings.HasPrefix(lines[1], "commit ") || !strings.HasPrefix(lines[2], "built with go") {
		t.Errorf("--version printed:\n%s", got)
	}
}
