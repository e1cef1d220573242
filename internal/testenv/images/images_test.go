package images

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

func TestSpecs(t *testing.T) {
	t.Setenv(EnvLNDImage, "")
	t.Setenv(EnvBTCDImage, "")
	l, b := LND(), BTCD()
	if l.Ref != "l402kit/lnd:"+LNDVersion || l.Overridden || l.Entrypoint != "/bin/lnd" {
		t.Errorf("LND() = %+v", l)
	}
	if b.Ref != "l402kit/btcd:"+BTCDVersion || b.Overridden || b.Entrypoint != "/bin/btcd" {
		t.Errorf("BTCD() = %+v", b)
	}
	if got, want := dockerfile(l), "FROM scratch\nCOPY lnd lncli /bin/\nENTRYPOINT [\"/bin/lnd\"]\n"; got != want {
		t.Errorf("lnd Dockerfile:\n%s\nwant:\n%s", got, want)
	}

	t.Setenv(EnvLNDImage, "lightninglabs/lnd:v0.20.0-beta")
	if l := LND(); l.Ref != "lightninglabs/lnd:v0.20.0-beta" || !l.Overridden {
		t.Errorf("LND() with %s set = %+v", EnvLNDImage, l)
	}
	// An overridden image is never built, whatever the engine holds.
	r, err := ensure(context.Background(), nil, &Options{Logf: t.Logf}, LND())
	if err != nil || r.Built || !strings.Contains(r.Note, "environment") {
		t.Errorf("ensure(overridden) = %+v, %v", r, err)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv(EnvCacheDir, "/some/where")
	if d, err := DefaultCacheDir(); err != nil || d != "/some/where" {
		t.Errorf("with %s: %q, %v", EnvCacheDir, d, err)
	}
	t.Setenv(EnvCacheDir, "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if d, err := DefaultCacheDir(); err != nil || d != filepath.Join("/xdg", "l402kit") {
		t.Errorf("with XDG_CACHE_HOME: %q, %v", d, err)
	}
}

// TestEnsureBuildsOnce builds a throwaway FROM scratch image through the
// same path as the real ones (cache, classic builder, tag check), with two
// small files standing in for compiled binaries, then removes it.
func TestEnsureBuildsOnce(t *testing.T) {
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Skipf("no Docker engine reachable: %v", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		t.Skipf("no Docker engine reachable: %v", err)
	}
	var b [4]byte
	rand.Read(b[:])
	compiles := 0
	s := Spec{
		Ref:        "l402kit-test/images:" + hex.EncodeToString(b[:]),
		Entrypoint: "/bin/one",
		name:       "test",
		version:    "v0",
		binaries:   []string{"one", "two"},
		compile: func(_ context.Context, _ *Options, dir string) error {
			compiles++
			for _, n := range []string{"one", "two"} {
				if err := os.WriteFile(filepath.Join(dir, n), []byte("not really a binary: "+n), 0o755); err != nil {
					return err
				}
			}
			return nil
		},
	}
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), s.Ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("remove %s: %v", s.Ref, err)
		}
	})
	o := &Options{CacheDir: t.TempDir(), Logf: t.Logf, Output: testWriter{t}}

	r, err := ensure(ctx, cli.Client, o, s)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Built || !r.Compiled || compiles != 1 {
		t.Fatalf("first ensure = %+v after %d compiles, want built and compiled once", r, compiles)
	}
	img, err := cli.ImageInspect(ctx, s.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if ep := img.Config.Entrypoint; len(ep) != 1 || ep[0] != "/bin/one" {
		t.Errorf("entrypoint %v", ep)
	}
	if img.Config.Labels["org.l402kit.image"] != "test" {
		t.Errorf("labels %v", img.Config.Labels)
	}

	r, err = ensure(ctx, cli.Client, o, s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Built || r.Note != "tag exists" {
		t.Fatalf("second ensure = %+v, want nothing built", r)
	}

	o.Rebuild = true
	r, err = ensure(ctx, cli.Client, o, s)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Built || r.Compiled || compiles != 1 {
		t.Fatalf("rebuild = %+v after %d compiles, want built from cached binaries", r, compiles)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestMissing checks Missing against the engine: it agrees with Exists for
// the project's own tags and never lists images named by the environment.
func TestMissing(t *testing.T) {
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Skipf("no Docker engine reachable: %v", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		t.Skipf("no Docker engine reachable: %v", err)
	}

	t.Setenv(EnvLNDImage, "")
	t.Setenv(EnvBTCDImage, "")
	missing, err := Missing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Spec{BTCD(), LND()} {
		ok, err := Exists(ctx, cli.Client, s.Ref)
		if err != nil {
			t.Fatal(err)
		}
		listed := slices.Contains(missing, s.Ref)
		if ok == listed {
			t.Errorf("%s: exists %v, listed missing %v", s.Ref, ok, listed)
		}
	}

	t.Setenv(EnvLNDImage, "l402kit-test/not-built:never")
	t.Setenv(EnvBTCDImage, "l402kit-test/not-built:never")
	if missing, err := Missing(ctx); err != nil || len(missing) != 0 {
		t.Errorf("Missing with both images named by the environment = %v, %v; want none", missing, err)
	}
}
