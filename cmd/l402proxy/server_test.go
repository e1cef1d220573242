package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
)

// TestMain lets the test binary stand in for l402proxy in a child process
// (the graceful-shutdown test signals a real process).
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("L402PROXY_AS_MAIN"); ok {
		if err := run(context.Background(), strings.Fields(args), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "l402proxy:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestServerFlagsAndYAML(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || o.server != defaultServer {
		t.Fatalf("defaults: %+v %v", o.server, err)
	}
	o, err = parseFlags([]string{"--read-header-timeout", "3s", "--write-timeout", "0", "--max-header-bytes", "8192", "--max-connections", "10", "--shutdown-timeout", "1m"})
	if err != nil || o.server.readHeaderTimeout != 3*time.Second || o.server.writeTimeout != 0 || o.server.maxHeaderBytes != 8192 || o.server.maxConns != 10 || o.server.shutdownTimeout != time.Minute {
		t.Fatalf("flags: %+v %v", o.server, err)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("server:\n  read_timeout: 30s\n  idle_timeout: 10\n  write_timeout: 0s\n  max_connections: 5\n  max_header_bytes: 16384\n"), 0o600)
	fc, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	s := defaultServer
	fc.Server.apply(&s)
	if s.readTimeout != 30*time.Second || s.idleTimeout != 10*time.Second || s.writeTimeout != 0 || s.maxConns != 5 || s.maxHeaderBytes != 16384 || s.readHeaderTimeout != defaultServer.readHeaderTimeout {
		t.Fatalf("yaml: %+v", s)
	}
	for _, bad := range []serverOptions{
		func() serverOptions { s := defaultServer; s.readHeaderTimeout = 0; return s }(),
		func() serverOptions { s := defaultServer; s.maxHeaderBytes = 100; return s }(),
		func() serverOptions { s := defaultServer; s.writeTimeout = -1; return s }(),
	} {
		if bad.check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	os.WriteFile(path, []byte("server:\n  read_timout: 30s\n"), 0o600)
	if _, err := loadConfig(path); err == nil || !strings.Contains(err.Error(), "read_timout") {
		t.Fatalf("typo in server section: %v", err)
	}
	// A caveat typo fails at start-up, naming the key.
	os.WriteFile(path, []byte("backend: memory://\nroutes:\n  - name: api\n    path: /\n    price_sat: 1\n    caveats: [\"mehtod=GET\"]\n"), 0o600)
	err = run(context.Background(), []string{"--config", path, "--listen", "127.0.0.1:0", "--state", "memory"}, nil)
	if err == nil || !strings.Contains(err.Error(), "mehtod") {
		t.Fatalf("caveat typo: %v", err)
	}
}

func TestServerHeaderLimit(t *testing.T) {
	o := defaultServer
	o.maxHeaderBytes = 8 << 10
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config = o.server(srv.Config.Handler, slogDiscard())
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB header with an 8 KiB bound: %s", resp.Status)
	}
}

// TestGracefulShutdownResolvesHold runs l402proxy as a real process on the
// memory backend with a single-use route, starts a request whose payment
// is held, sends SIGTERM while the upstream is still answering, and checks
// that the request completes, the hold invoice is settled (the payer gets
// its preimage) and the process exits cleanly.
func TestGracefulShutdownResolvesHold(t *testing.T) {
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))
	defer up.Close()
	defer close(release)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "l402proxy.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("listen: %s\nbackend: memory://\nserver:\n  shutdown_timeout: 30s\nroutes:\n  - name: once\n    path: /\n    upstream: %s\n    price_sat: 1\n    single_use: true\n", addr, up.URL)), 0o600)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "L402PROXY_AS_MAIN=--config "+conf+" --forward-auth off --state "+filepath.Join(dir, "state.db"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	logs := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case logs <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()
	waitLog := func(substr string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l := <-logs:
				if strings.Contains(l, substr) {
					return
				}
			case err := <-exited:
				t.Fatalf("l402proxy exited waiting for %q: %v", substr, err)
			case <-timeout:
				t.Fatalf("no log line %q within 30s", substr)
			}
		}
	}
	waitLog("l402proxy listening")
	base := "http://" + addr

	resp, err := http.Get(base + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	chs, err := l402.ParseChallenges(resp.Header)
	if err != nil {
		t.Fatalf("%s: %v", resp.Status, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type payResult struct {
		p   *backend.Payment
		err error
	}
	paid := make(chan payResult, 1)
	go func() {
		p, err := memory.NewDevPayer(base+memory.DevPayPath, nil).PayInvoice(ctx, chs[0].Invoice, backend.PayOptions{})
		paid <- payResult{p, err}
	}()
	type reqResult struct {
		status int
		body   string
		err    error
	}
	served := make(chan reqResult, 1)
	go func() {
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/x", nil)
			req.Header.Set("Authorization", l402.PendingAuthorization(chs[0].Macaroon))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				served <- reqResult{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusPaymentRequired && strings.Contains(string(b), "payment_pending") {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			served <- reqResult{resp.StatusCode, string(b), nil}
			return
		}
	}()
	select {
	case <-got:
	case r := <-served:
		t.Fatalf("request answered before reaching the upstream: %+v", r)
	case <-ctx.Done():
		t.Fatal("the request never reached the upstream")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog("shutting down")
	release <- struct{}{}

	r := <-served
	if r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Fatalf("in-flight request across SIGTERM: %+v", r)
	}
	pr := <-paid
	if pr.err != nil || pr.p.Preimage.Hash() != pr.p.PaymentHash {
		t.Fatalf("payment: %+v %v, want settled with its preimage", pr.p, pr.err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Fatalf("l402proxy exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("l402proxy did not exit within 30s of SIGTERM")
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
