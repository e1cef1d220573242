package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/l402kit/l402kit/internal/tools/childproc"
)

// nginxSite is the repository's forward-auth configuration for nginx, the
// file README tells users to include. The bench runs it as it is, with its
// example addresses and cache directory replaced.
const nginxSite = "deploy/nginx/l402.conf"

// nginxMain wraps the site in a foreground nginx whose every file is under
// the run's temp dir. worker_processes auto: one worker per CPU, as a
// server would run it.
const nginxMain = `daemon off;
master_process on;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/l402.conf;
}
`

// nginxBin finds nginx; Debian puts it in /usr/sbin, which a non-root PATH
// lacks.
func nginxBin() (string, error) {
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", fmt.Errorf("nginx not found in PATH or /usr/sbin (scripts/ci-deps.sh installs it)")
}

// startNginx runs nginx with deploy/nginx/l402.conf on listen, in front of
// upstream, asking auth (host:port of an l402proxy) about each request.
func startNginx(ps *childproc.Group, dir, name, listen, upstream, auth string) (*childproc.Proc, error) {
	bin, err := nginxBin()
	if err != nil {
		return nil, err
	}
	site, err := os.ReadFile(nginxSite)
	if err != nil {
		return nil, fmt.Errorf("%w (run the bench from the repository's root, as make bench does)", err)
	}
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := string(site)
	for _, r := range [][2]string{
		{"listen 80;", "listen " + listen + ";"},
		{"127.0.0.1:9000", upstream}, // the file's example upstream
		{"127.0.0.1:8402", auth},     // and l402proxy
		{"/var/cache/nginx/l402", filepath.Join(dir, "auth-cache")},
	} {
		if !strings.Contains(conf, r[0]) {
			return nil, fmt.Errorf("%s no longer contains %q: update internal/tools/bench to match it", nginxSite, r[0])
		}
		conf = strings.ReplaceAll(conf, r[0], r[1])
	}
	if err := os.WriteFile(filepath.Join(dir, "l402.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(nginxMain, dir)), 0o644); err != nil {
		return nil, err
	}
	// As root, nginx's workers run as nobody: they must reach the cache
	// (MkdirTemp made the run's directory 0700).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			return nil, err
		}
	}
	return ps.Start(name, bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "startup.log"))
}
