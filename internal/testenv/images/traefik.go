package images

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"
)

// TraefikVersion is the Traefik the front-server tests run. v3.6 is the
// newest line whose go.mod has only module replaces: from v3.7 on it
// replaces a module by a directory of Traefik's own repository, which the
// module proxy's copy of Traefik does not contain.
const TraefikVersion = "v3.6.12"

// traefikGoMod repeats what Traefik v3.6.12's go.mod says beyond its
// requirements: Go ignores a dependency's replace and exclude directives,
// and Traefik does not build without them (hence "go install ...@version"
// refuses it, as it refuses lnd).
const traefikGoMod = `replace (
	github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e
	github.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59
	github.com/mailgun/minheap => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595
)

exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible
`

// EnvTraefik names a Traefik binary to run instead of the one built here.
const EnvTraefik = "L402KIT_TRAEFIK"

func traefikSpec() Spec {
	return Spec{name: "traefik", version: TraefikVersion, binaries: []string{"traefik"}, compile: compileTraefik}
}

// TraefikPath is where EnsureTraefik leaves the binary: $L402KIT_TRAEFIK
// when set, else the cache directory's bin/traefik-<version>/traefik. The
// file need not exist yet.
func TraefikPath() (string, error) {
	if p := os.Getenv(EnvTraefik); p != "" {
		return p, nil
	}
	dir, err := DefaultCacheDir()
	if err != nil {
		return "", err
	}
	return traefikBin(dir), nil
}

func traefikBin(cacheDir string) string {
	s := traefikSpec()
	return filepath.Join(cacheDir, "bin", s.name+"-"+s.version, "traefik")
}

// EnsureTraefik compiles Traefik TraefikVersion from the Go module proxy
// into the cache unless it is there already, and returns the binary's path.
// Traefik is a plain binary here, run on loopback by the tests: no image.
func EnsureTraefik(ctx context.Context, o Options) (Result, string, error) {
	start := time.Now()
	if p := os.Getenv(EnvTraefik); p != "" {
		return Result{Ref: p, Note: "named by " + EnvTraefik + "; not built here"}, p, nil
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.CacheDir == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return Result{}, "", err
		}
		o.CacheDir = dir
	}
	s := traefikSpec()
	bin := traefikBin(o.CacheDir)
	r := Result{Ref: "traefik " + s.version}
	if haveAll(filepath.Dir(bin), s.binaries) {
		r.Note = "cached at " + bin
		return r, bin, nil
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	o.Logf("images: compiling traefik %s into %s", s.version, filepath.Dir(bin))
	if err := compileInto(ctx, &o, s, filepath.Dir(bin)); err != nil {
		return r, "", err
	}
	r.Compiled, r.Built, r.Took = true, true, time.Since(start)
	return r, bin, nil
}

// compileTraefik builds cmd/traefik in a small module that requires Traefik
// and repeats its replace and exclude directives.
func compileTraefik(ctx context.Context, o *Options, out string) error {
	return buildInModule(ctx, o, "traefik", TraefikVersion, "go 1.25.0", "github.com/traefik/traefik/v3", traefikGoMod,
		"-o", filepath.Join(out, "traefik"), "github.com/traefik/traefik/v3/cmd/traefik")
}
