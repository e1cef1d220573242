// Package deploy holds the forward-auth configurations for nginx, Caddy and
// Traefik that the README shows, as the files users copy (nginx/l402.conf,
// caddy/Caddyfile, traefik/traefik.yml and traefik/dynamic.yml), embedded
// so that tests and benchmarks run exactly these files with only their
// placeholders replaced.
package deploy

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed nginx/l402.conf caddy/Caddyfile traefik/traefik.yml traefik/dynamic.yml
var files embed.FS

// Files lists the configuration files, by their path in this directory.
var Files = []string{"nginx/l402.conf", "caddy/Caddyfile", "traefik/traefik.yml", "traefik/dynamic.yml"}

// Placeholders in the files: what a user edits, and a test or benchmark
// replaces.
const (
	// Upstream is the guarded service's address, in every file.
	Upstream = "127.0.0.1:9000"
	// Auth is l402proxy's address (forward-auth endpoint /l402/auth), in
	// every file.
	Auth = "127.0.0.1:8402"
	// NginxListen is nginx's listen directive.
	NginxListen = "listen 80;"
	// NginxCacheDir is the directory of nginx's auth-decision cache.
	NginxCacheDir = "/var/cache/nginx/l402"
	// NginxCacheOn turns the auth-decision cache on; "proxy_cache off;"
	// in its place turns it off.
	NginxCacheOn = "proxy_cache l402_auth;"
	// CaddySite is the Caddyfile's site address line.
	CaddySite = ":8080 {"
	// TraefikListen is the entry point's address in traefik.yml.
	TraefikListen = `":8080"`
	// TraefikDynamic is the dynamic configuration's path in traefik.yml.
	TraefikDynamic = "/etc/traefik/dynamic.yml"
)

// Read returns the file name (one of Files).
func Read(name string) (string, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	return string(b), nil
}

// Substitute replaces each old string of pairs (old, new, old, new, ...) in
// the file name's content s. A placeholder that is absent is an error, so
// a file cannot drift away from what its users replace.
func Substitute(name, s string, pairs ...string) (string, error) {
	if len(pairs)%2 != 0 {
		return "", fmt.Errorf("deploy: Substitute wants pairs, got %d strings", len(pairs))
	}
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			return "", fmt.Errorf("deploy: %s no longer contains %q", name, pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s, nil
}
