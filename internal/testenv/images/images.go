// Package images builds the container images the regtest harness runs,
// from pinned module versions, with no registry: each binary is compiled
// here with the local Go toolchain and copied into a FROM scratch image by
// the Docker engine's classic builder, which needs no base image to pull.
//
// Binaries are cached by version under the cache directory, and an image
// whose tag exists already is not rebuilt, so only the first run pays for
// compiling lnd (about five minutes on two cores).
//
// L402KIT_LND_IMAGE and L402KIT_BTCD_IMAGE name other images to run instead
// (official images from a registry, say); those are never built here.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Pinned versions.
const (
	LNDVersion  = "v0.20.0-beta"
	BTCDVersion = "v0.24.2"
)

// Environment variables that override the image references.
const (
	EnvLNDImage  = "L402KIT_LND_IMAGE"
	EnvBTCDImage = "L402KIT_BTCD_IMAGE"
	// EnvCacheDir overrides where binaries are cached.
	EnvCacheDir = "L402KIT_CACHE_DIR"
)

// lndTags are the build tags of lnd's release builds that this project
// needs: the sub-servers (invoicesrpc, routerrpc, ...) exist only with them.
const lndTags = "signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc"

// lndReplaces repeats the replace directives of lnd v0.20.0-beta's go.mod:
// Go ignores a dependency's replaces, and lnd does not build without these
// (lnrpc needs lightninglabs' protobuf fork), which is also why
// "go install github.com/lightningnetwork/lnd/cmd/lnd@version" refuses it.
var lndReplaces = []string{
	"github.com/ulikunitz/xz => github.com/ulikunitz/xz v0.5.11",
	"github.com/gogo/protobuf => github.com/gogo/protobuf v1.3.2",
	"google.golang.org/protobuf => github.com/lightninglabs/protobuf-go-hex-display v1.33.0-hex-display",
}

// Spec describes one image.
type Spec struct {
	// Ref is the image reference the harness runs.
	Ref string
	// Overridden is true when Ref came from the environment; such an image
	// is never built here.
	Overridden bool
	// Entrypoint is the daemon's path inside the image.
	Entrypoint string
	name       string // "lnd" or "btcd", also the cache directory's prefix
	version    string
	binaries   []string
	compile    func(ctx context.Context, o *Options, dir string) error
}

// LND describes the lnd image: lnd and lncli in /bin.
func LND() Spec {
	return spec("lnd", LNDVersion, EnvLNDImage, []string{"lnd", "lncli"}, compileLND)
}

// BTCD describes the btcd image: btcd and btcctl in /bin.
func BTCD() Spec {
	return spec("btcd", BTCDVersion, EnvBTCDImage, []string{"btcd", "btcctl"}, compileBTCD)
}

func spec(name, version, env string, bins []string, compile func(context.Context, *Options, string) error) Spec {
	s := Spec{
		Ref:        "l402kit/" + name + ":" + version,
		Entrypoint: "/bin/" + name,
		name:       name,
		version:    version,
		binaries:   bins,
		compile:    compile,
	}
	if v := os.Getenv(env); v != "" {
		s.Ref, s.Overridden = v, true
	}
	return s
}

// Options tune Ensure.
type Options struct {
	// CacheDir holds compiled binaries by version. Empty means
	// $L402KIT_CACHE_DIR, else the user cache directory's "l402kit".
	CacheDir string
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
	// Output receives the compiler's and builder's output; nil discards it.
	Output io.Writer
	// Rebuild builds the images even when their tags exist (binaries
	// in the cache are still reused).
	Rebuild bool
}

// Result says what Ensure did for one image.
type Result struct {
	Ref      string
	Built    bool          // the image was built now
	Compiled bool          // its binaries were compiled now, not taken from the cache
	Took     time.Duration // time spent on this image
	Note     string        // why nothing was built, when nothing was
}

// Ensure makes sure the btcd and lnd images exist, building what is missing.
func Ensure(ctx context.Context, o Options) ([]Result, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.CacheDir == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.CacheDir = dir
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("images: docker client: %w", err)
	}
	defer cli.Close()
	var out []Result
	for _, s := range []Spec{BTCD(), LND()} {
		r, err := ensure(ctx, cli.Client, &o, s)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Missing lists the images Ensure would build: those not named by the
// environment whose tags the engine lacks.
func Missing(ctx context.Context) ([]string, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("images: docker client: %w", err)
	}
	defer cli.Close()
	var out []string
	for _, s := range []Spec{BTCD(), LND()} {
		if s.Overridden {
			continue
		}
		ok, err := Exists(ctx, cli.Client, s.Ref)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, s.Ref)
		}
	}
	return out, nil
}

// DefaultCacheDir is $L402KIT_CACHE_DIR, or "l402kit" in the user's cache
// directory ($XDG_CACHE_HOME or ~/.cache on Linux).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("images: no cache directory (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(d, "l402kit"), nil
}

// Exists reports whether the engine has an image tagged ref.
func Exists(ctx context.Context, cli *client.Client, ref string) (bool, error) {
	_, err := cli.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("images: inspect %s: %w", ref, err)
}

func ensure(ctx context.Context, cli *client.Client, o *Options, s Spec) (Result, error) {
	start := time.Now()
	r := Result{Ref: s.Ref}
	if s.Overridden {
		r.Note = "named by the environment; not built here (the engine pulls it if missing)"
		return r, nil
	}
	if !o.Rebuild {
		ok, err := Exists(ctx, cli, s.Ref)
		if err != nil {
			return r, err
		}
		if ok {
			r.Note = "tag exists"
			return r, nil
		}
	}
	binDir := filepath.Join(o.CacheDir, "bin", s.name+"-"+s.version)
	if !haveAll(binDir, s.binaries) {
		o.Logf("images: compiling %s %s into %s", s.name, s.version, binDir)
		t := time.Now()
		if err := compileInto(ctx, o, s, binDir); err != nil {
			return r, err
		}
		r.Compiled = true
		o.Logf("images: compiled %s %s in %s", s.name, s.version, time.Since(t).Round(time.Second))
	}
	t := time.Now()
	if err := buildImage(ctx, cli, o, s, binDir); err != nil {
		return r, err
	}
	r.Built = true
	r.Took = time.Since(start)
	o.Logf("images: built %s in %s (image step %s)", s.Ref, r.Took.Round(time.Second), time.Since(t).Round(time.Millisecond))
	return r, nil
}

func haveAll(dir string, names []string) bool {
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
			return false
		}
	}
	return true
}

// compileInto compiles into a fresh directory and renames it into place, so
// an interrupted build never leaves half a set of binaries in the cache.
func compileInto(ctx context.Context, o *Options, s Spec, binDir string) error {
	if err := os.MkdirAll(filepath.Dir(binDir), 0o755); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(binDir), s.name+"-tmp-")
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := s.compile(ctx, o, tmp); err != nil {
		return err
	}
	if !haveAll(tmp, s.binaries) {
		return fmt.Errorf("images: compiling %s produced no %v in %s", s.name, s.binaries, tmp)
	}
	_ = os.RemoveAll(binDir)
	if err := os.Rename(tmp, binDir); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return nil
}

// goEnv is the environment for the compiler: static binaries, no workspace
// of the caller's, and module mode whatever GOFLAGS the caller set.
func goEnv(flags string) []string {
	env := []string{"CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=" + flags}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "CGO_ENABLED", "GOWORK", "GOFLAGS", "GOOS", "GOARCH":
			continue // the images run on the engine's linux/amd64 or arm64, chosen below
		}
		env = append(env, kv)
	}
	return env
}

func goTool() (string, error) {
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("images: the Go toolchain is needed to build the regtest images: %w", err)
	}
	return p, nil
}

func run(ctx context.Context, o *Options, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var tail bytes.Buffer
	w := io.MultiWriter(o.Output, &tailWriter{buf: &tail, max: 4096})
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("images: %s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail.String())
	}
	return nil
}

// compileLND builds lnd and lncli in a small module that requires lnd and
// repeats its replace directives.
func compileLND(ctx context.Context, o *Options, out string) error {
	var extra strings.Builder
	for _, r := range lndReplaces {
		fmt.Fprintf(&extra, "replace %s\n", r)
	}
	return buildInModule(ctx, o, "lnd", LNDVersion, "go 1.23", "github.com/lightningnetwork/lnd", extra.String(),
		"-tags", lndTags, "-o", out+string(os.PathSeparator),
		"github.com/lightningnetwork/lnd/cmd/lnd", "github.com/lightningnetwork/lnd/cmd/lncli")
}

// buildInModule runs go build with args in a builder module of the cache
// that requires module at version and adds extra (replace and exclude
// directives repeated from the module's own go.mod, which Go ignores in a
// dependency).
func buildInModule(ctx context.Context, o *Options, name, version, goLine, module, extra string, args ...string) error {
	goBin, err := goTool()
	if err != nil {
		return err
	}
	mod := filepath.Join(o.CacheDir, "src", name+"-builder-"+version)
	if err := os.MkdirAll(mod, 0o755); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	gomod := fmt.Sprintf("// Written by l402kit's internal/testenv/images to build %s %s.\nmodule l402kit.local/%s-builder\n\n%s\n\nrequire %s %s\n\n%s",
		name, version, name, goLine, module, version, extra)
	if err := writeIfChanged(filepath.Join(mod, "go.mod"), []byte(gomod)); err != nil {
		return err
	}
	// -mod=mod lets go fill go.sum from the module proxy (or the local
	// module cache) for exactly what these packages import.
	return run(ctx, o, mod, goEnv("-mod=mod -buildvcs=false"), goBin,
		append([]string{"build", "-trimpath", "-ldflags=-s -w"}, args...)...)
}

// compileBTCD uses go install pkg@version: btcd's go.mod has no replaces.
func compileBTCD(ctx context.Context, o *Options, out string) error {
	goBin, err := goTool()
	if err != nil {
		return err
	}
	env := append(goEnv("-buildvcs=false"), "GOBIN="+out)
	return run(ctx, o, out, env, goBin, "install", "-trimpath", "-ldflags=-s -w",
		"github.com/btcsuite/btcd@"+BTCDVersion, "github.com/btcsuite/btcd/cmd/btcctl@"+BTCDVersion)
}

func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return nil
}

// dockerfile is the whole image: static binaries need nothing else.
func dockerfile(s Spec) string {
	return fmt.Sprintf("FROM scratch\nCOPY %s /bin/\nENTRYPOINT [%q]\n", strings.Join(s.binaries, " "), s.Entrypoint)
}

// buildImage sends a tar of the Dockerfile and binaries to the engine's
// classic builder (BuilderV1): "FROM scratch" needs no pull.
func buildImage(ctx context.Context, cli *client.Client, o *Options, s Spec, binDir string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, s, binDir)) }()
	res, err := cli.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{s.Ref},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		Labels: map[string]string{
			"org.l402kit.image":   s.name,
			"org.l402kit.version": s.version,
		},
	})
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("images: build %s: %w", s.Ref, err)
	}
	defer res.Body.Close()
	return readBuildStream(res.Body, o.Output, s.Ref)
}

func writeContext(w io.Writer, s Spec, binDir string) error {
	tw := tar.NewWriter(w)
	df := []byte(dockerfile(s))
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if _, err := tw.Write(df); err != nil {
		return err
	}
	for _, n := range s.binaries {
		if err := addFile(tw, filepath.Join(binDir, n), n); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// readBuildStream reads the engine's JSON progress messages; a build error
// arrives as a message, not as an HTTP status.
func readBuildStream(r io.Reader, out io.Writer, ref string) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("images: build %s: reading engine output: %w", ref, err)
		}
		if m.Stream != "" {
			io.WriteString(out, m.Stream)
		}
		if m.Error != "" {
			return fmt.Errorf("images: build %s: %s", ref, m.Error)
		}
	}
}

// tailWriter keeps the last max bytes written, for error messages.
type tailWriter struct {
	buf *bytes.Buffer
	max int
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}
