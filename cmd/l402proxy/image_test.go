package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docker returns the docker CLI, or skips the test saying why (fails it
// when L402KIT_REQUIRE_DOCKER=1, as in CI).
func docker(t *testing.T) string {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("L402KIT_REQUIRE_DOCKER") == "1" {
			t.Fatal(why + "; L402KIT_REQUIRE_DOCKER=1")
		}
		t.Skip(why)
	}
	bin, err := exec.LookPath("docker")
	if err != nil {
		skip("docker CLI not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		skip("docker engine not reachable: " + strings.TrimSpace(string(out)))
	}
	return bin
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestImageServesThe402Flow builds the image of deploy/docker from this
// checkout, as `make image` does (nothing pulled), runs it with its
// defaults (the demo upstream on the memory node, state in /data) and
// walks the 402 flow through the published port.
func TestImageServesThe402Flow(t *testing.T) {
	bin := docker(t)
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	suffix := make([]byte, 4)
	rand.Read(suffix)
	tag := "l402kit/l402proxy:test-" + hex.EncodeToString(suffix)
	build := exec.CommandContext(ctx, "sh", filepath.Join(root, "deploy", "docker", "build.sh"), tag)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(bin, "rmi", "-f", tag).Run() })
	out, err := exec.CommandContext(ctx, bin, "run", "-d", "--rm", "--label", "org.l402kit.test=true", "-p", "127.0.0.1::8402", tag).Output()
	if err != nil {
		t.Fatalf("docker run: %v", err)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command(bin, "logs", id).CombinedOutput()
			t.Logf("container logs:\n%s", logs)
		}
		exec.Command(bin, "rm", "-f", id).Run()
	})
	out, err = exec.CommandContext(ctx, bin, "port", id, "8402/tcp").Output()
	if err != nil {
		t.Fatalf("docker port: %v", err)
	}
	addr := strings.TrimSpace(strings.Split(string(out), "\n")[0])
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, err := try(base+"/healthz", ""); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container does not answer at %s after 60 s", base)
		}
		time.Sleep(100 * time.Millisecond)
	}
	auth := buy(t, base, "/paid/article", base)
	if st, _ := get(t, base+"/paid/article", auth); st != http.StatusOK {
		t.Fatalf("paid request through the image: %d, want 200", st)
	}
}

// TestComposeFile checks deploy/docker/compose.yml with docker compose's
// own parser (no image is pulled), and that the files it mounts exist.
// Running it needs the postgres, nginx and whoami images from a registry,
// which this test cannot pull.
func TestComposeFile(t *testing.T) {
	root := repoRoot(t)
	dir := filepath.Join(root, "deploy", "docker")
	for _, f := range []string{"../nginx/l402.conf", "routes.yml", "secrets"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("compose.yml mounts %s: %v", f, err)
		}
	}
	var cmd []string
	if p, err := exec.LookPath("docker-compose"); err == nil {
		cmd = []string{p}
	} else if p, err := exec.LookPath("docker"); err == nil && exec.Command(p, "compose", "version").Run() == nil {
		cmd = []string{p, "compose"}
	} else {
		if os.Getenv("L402KIT_REQUIRE_DOCKER") == "1" {
			t.Fatal("neither docker-compose nor docker compose found (scripts/ci-deps.sh installs docker-compose); L402KIT_REQUIRE_DOCKER=1")
		}
		t.Skip("neither docker-compose nor docker compose found")
	}
	c := exec.Command(cmd[0], append(cmd[1:], "-f", filepath.Join(dir, "compose.yml"), "config", "-q")...)
	c.Env = append(os.Environ(), "POSTGRES_PASSWORD=test")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("compose config: %v\n%s", err, out)
	}
	// Without the password it refuses rather than start a database with
	// an empty one.
	c = exec.Command(cmd[0], append(cmd[1:], "-f", filepath.Join(dir, "compose.yml"), "config", "-q")...)
	c.Env = append(os.Environ(), "POSTGRES_PASSWORD=")
	if err := c.Run(); err == nil {
		t.Fatal("compose config accepted an empty POSTGRES_PASSWORD")
	}
}
