// Package fronttest runs real front servers (nginx, Caddy, Traefik) on
// loopback ports with the forward-auth configuration files of package
// deploy, the ones the README shows, so tests exercise exactly what users
// copy.
// Each server is stopped when the test ends; its logs are shown when the
// test failed.
//
// Missing binaries skip the test with the reason, or fail it when the
// server's L402KIT_REQUIRE_* variable is 1 (CI sets them).
package fronttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/l402kit/l402kit/deploy"
	"github.com/l402kit/l402kit/internal/testenv/images"
)

// Front is a running front server.
type Front struct {
	Name string
	// URL is http://127.0.0.1:PORT, where clients reach it.
	URL string
	// Addr is URL's host:port.
	Addr string
}

// Addrs are what a deploy file's placeholders are replaced with.
type Addrs struct {
	// Upstream is the guarded service's host:port.
	Upstream string
	// Auth is the host:port of the forward-auth endpoint, served at
	// /l402/auth.
	Auth string
}

// RepoFile reads a file by its path relative to the repository root.
func RepoFile(t testing.TB, rel string) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("fronttest: cannot locate the repository")
	}
	root := filepath.Join(filepath.Dir(self), "..", "..", "..")
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deployFile returns the deploy file name with the placeholders of pairs
// (old, new, ...) replaced; one that is absent fails the test.
func deployFile(t testing.TB, name string, pairs ...string) string {
	t.Helper()
	s, err := deploy.Read(name)
	if err == nil {
		s, err = deploy.Substitute(name, s, pairs...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// binary finds a server's executable: the first of paths that exists, or
// name in PATH. Missing, the test skips, or fails when env is "1".
func binary(t testing.TB, name, env, hint string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s binary not found (%s)", name, hint)
	if os.Getenv(env) == "1" {
		t.Fatal(msg + "; " + env + "=1")
	}
	t.Skip(msg)
	return ""
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close() // the server binds it next; a clash shows as the server failing to start
	return a
}

// process runs a server in the foreground until the test ends.
type process struct {
	name string
	dir  string
	logs []string // files under dir to show on failure
	cmd  *exec.Cmd
	out  bytes.Buffer
}

func (p *process) start(t testing.TB, listen string, ready func() error) {
	t.Helper()
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.Dir = p.dir
	// Its own process group: a stop reaches the workers too.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			p.dump(t)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			if last = ready(); last == nil {
				return
			}
		} else {
			last = err
		}
		select {
		case err := <-exited:
			exited <- err
			p.dump(t)
			t.Fatalf("%s exited before it was ready: %v", p.name, err)
		default:
		}
		if time.Now().After(deadline) {
			p.dump(t)
			t.Fatalf("%s not ready on %s within 30s: %v", p.name, listen, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *process) dump(t testing.TB) {
	for _, f := range p.logs {
		if b, err := os.ReadFile(filepath.Join(p.dir, f)); err == nil && len(b) > 0 {
			t.Logf("%s %s:\n%s", p.name, f, b)
		}
	}
	if p.out.Len() > 0 {
		t.Logf("%s output:\n%s", p.name, p.out.String())
	}
}

func listening() error { return nil }

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// serverDir is a temp dir others may enter: nginx's workers run as nobody
// when the tests run as root.
func serverDir(t testing.TB) string {
	t.Helper()
	// Not t.TempDir: its parent directory is private to the owner.
	dir, err := os.MkdirTemp("", "l402kit-front-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// NginxOptions change the nginx deploy file as a test or benchmark needs.
type NginxOptions struct {
	// NoCache turns the auth-decision cache off (proxy_cache off).
	NoCache bool
	// Workers is worker_processes; default 1.
	Workers int
}

func nginxBinary(t testing.TB) string {
	return binary(t, "nginx", "L402KIT_REQUIRE_NGINX", "apt-get install nginx-light, or scripts/ci-deps.sh", "/usr/sbin/nginx")
}

// nginxMain is the main configuration around an http-context include: every
// path nginx writes to is in dir.
func nginxMain(dir string, workers int, include string) string {
	return fmt.Sprintf(`daemon off;
worker_processes %d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
%s
}
`, workers, dir, include)
}

func startNginx(t testing.TB, dir, listen, conf string) *Front {
	t.Helper()
	bin := nginxBinary(t)
	confPath := filepath.Join(dir, "nginx.conf")
	writeFile(t, confPath, conf)
	p := &process{name: "nginx", dir: dir, logs: []string{"startup.log", "error.log"},
		cmd: exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "startup.log"))}
	p.start(t, listen, listening)
	return &Front{Name: "nginx", URL: "http://" + listen, Addr: listen}
}

// Nginx runs nginx with deploy/nginx/l402.conf in its http context.
func Nginx(t testing.TB, a Addrs, o NginxOptions) *Front {
	t.Helper()
	nginxBinary(t)
	dir := serverDir(t)
	listen := freeAddr(t)
	cache := deploy.NginxCacheOn
	if o.NoCache {
		cache = "proxy_cache off;"
	}
	site := deployFile(t, "nginx/l402.conf",
		deploy.NginxListen, "listen "+listen+";",
		deploy.Upstream, a.Upstream,
		deploy.Auth, a.Auth,
		deploy.NginxCacheDir, filepath.Join(dir, "auth-cache"),
		deploy.NginxCacheOn, cache,
	)
	writeFile(t, filepath.Join(dir, "l402.conf"), site)
	if o.Workers <= 0 {
		o.Workers = 1
	}
	return startNginx(t, dir, listen, nginxMain(dir, o.Workers, "    include "+filepath.Join(dir, "l402.conf")+";"))
}

// NginxStatic runs nginx serving the files under root: an upstream that
// resolves dot segments itself. Files must be world-readable (nginx's
// workers run as nobody under root).
func NginxStatic(t testing.TB, root string) *Front {
	t.Helper()
	nginxBinary(t)
	dir := serverDir(t)
	listen := freeAddr(t)
	f := startNginx(t, dir, listen, nginxMain(dir, 1, fmt.Sprintf(`    server {
        listen %s;
        root %s;
    }`, listen, root)))
	f.Name = "nginx-static"
	return f
}

// Caddy runs Caddy with deploy/caddy/Caddyfile, on plain HTTP, with its
// admin endpoint off and its storage in a temp dir.
func Caddy(t testing.TB, a Addrs) *Front {
	t.Helper()
	bin := binary(t, "caddy", "L402KIT_REQUIRE_CADDY", "apt-get install caddy, or scripts/ci-deps.sh", "/usr/bin/caddy")
	dir := serverDir(t)
	listen := freeAddr(t)
	site := deployFile(t, "caddy/Caddyfile",
		deploy.CaddySite, "http://"+listen+" {",
		deploy.Upstream, a.Upstream,
		deploy.Auth, a.Auth,
	)
	writeFile(t, filepath.Join(dir, "site.caddy"), site)
	main := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/storage
	log {
		output file %[1]s/caddy.log
		level DEBUG
	}
}
import %[1]s/site.caddy
`, dir)
	confPath := filepath.Join(dir, "Caddyfile")
	writeFile(t, confPath, main)
	cmd := exec.Command(bin, "run", "--config", confPath, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	p := &process{name: "caddy", dir: dir, logs: []string{"caddy.log"}, cmd: cmd}
	p.start(t, listen, listening)
	return &Front{Name: "caddy", URL: "http://" + listen, Addr: listen}
}

// TraefikBinary is the Traefik the tests run: $L402KIT_TRAEFIK, else the one
// `make fronts` built into the cache, else traefik in PATH.
func TraefikBinary(t testing.TB) string {
	t.Helper()
	var paths []string
	if p, err := images.TraefikPath(); err == nil {
		paths = append(paths, p)
	}
	return binary(t, "traefik", "L402KIT_REQUIRE_TRAEFIK", "make fronts builds Traefik "+images.TraefikVersion+" into the cache", paths...)
}

// Traefik runs Traefik with deploy/traefik/traefik.yml and dynamic.yml.
func Traefik(t testing.TB, a Addrs) *Front {
	t.Helper()
	bin := TraefikBinary(t)
	dir := serverDir(t)
	listen := freeAddr(t)
	dyn := deployFile(t, "traefik/dynamic.yml",
		deploy.Upstream, a.Upstream,
		deploy.Auth, a.Auth,
	)
	writeFile(t, filepath.Join(dir, "dynamic.yml"), dyn)
	static := deployFile(t, "traefik/traefik.yml",
		deploy.TraefikListen, `"`+listen+`"`,
		deploy.TraefikDynamic, filepath.Join(dir, "dynamic.yml"),
	)
	// The tests' own additions: no calls home, logs to a file.
	static += fmt.Sprintf(`global:
  checkNewVersion: false
  sendAnonymousUsage: false
log:
  level: DEBUG
  filePath: %s/traefik.log
`, dir)
	confPath := filepath.Join(dir, "traefik.yml")
	writeFile(t, confPath, static)
	p := &process{name: "traefik", dir: dir, logs: []string{"traefik.log"},
		cmd: exec.Command(bin, "--configFile="+confPath)}
	url := "http://" + listen
	// Traefik listens before the file provider's routers are in place;
	// until then it answers 404 itself.
	p.start(t, listen, func() error {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url + "/.l402kit-ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return errors.New("no router yet (404)")
		}
		return nil
	})
	return &Front{Name: "traefik", URL: url, Addr: listen}
}
