package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// nginxConf is the configuration the README documents, with the test's
// addresses and every path nginx writes to inside the temp dir.
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    # The upstream needs to know the request was paid, not the credential.
    map $http_authorization $l402_upstream_authorization {
        "~*^(L402|LSAT)\s" "";
        default $http_authorization;
    }

    server {
        listen {{.Listen}};

        location / {
            auth_request /_l402;
            auth_request_set $l402_paid $upstream_http_x_l402_paid;
            auth_request_set $l402_token_id $upstream_http_x_l402_token_id;
            auth_request_set $l402_status $upstream_http_x_l402_status;
            auth_request_set $l402_retry_after $upstream_http_retry_after;
            error_page 401 = @l402;

            proxy_set_header X-L402-Paid $l402_paid;
            proxy_set_header X-L402-Token-Id $l402_token_id;
            proxy_set_header Authorization $l402_upstream_authorization;
            proxy_pass http://{{.Upstream}};
        }

        location = /_l402 {
            internal;
            proxy_pass http://{{.Auth}}/l402/auth?nginx=1;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Method $request_method;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header X-Forwarded-For $remote_addr;
        }

        # The endpoint answered 401 + X-L402-Status: give the client the
        # real status. nginx itself copies WWW-Authenticate from a 401 of
        # auth_request: 1.22 only the first value (the L402 challenge),
        # 1.23 and later all of them (L402 and LSAT).
        location @l402 {
            default_type application/json;
            add_header Cache-Control no-store always;
            add_header Retry-After $l402_retry_after always;
            if ($l402_status = 400) {
                return 400 '{"error":"request refused: not canonical (see the proxy log)"}\n';
            }
            if ($l402_status = 429) {
                return 429 '{"error":"too many payment challenges from this address; retry later"}\n';
            }
            if ($l402_status = 503) {
                return 503 '{"error":"payment service unavailable; retry later"}\n';
            }
            return 402 '{"error":"payment required: pay the invoice of the L402 challenge in WWW-Authenticate"}\n';
        }
    }
}
`

// startNginx runs nginx in the foreground with conf and returns its
// address; it is stopped when the test ends, also on failure.
func startNginx(t *testing.T, upstream, auth string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		// Debian installs it in /usr/sbin, which a non-root PATH lacks.
		if _, serr := os.Stat("/usr/sbin/nginx"); serr == nil {
			bin, err = "/usr/sbin/nginx", nil
		}
	}
	if err != nil {
		msg := "nginx binary not found in PATH or /usr/sbin (apt-get install nginx-light, or scripts/ci-deps.sh)"
		if os.Getenv("L402KIT_REQUIRE_NGINX") == "1" {
			t.Fatal(msg + "; L402KIT_REQUIRE_NGINX=1")
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close() // nginx binds it next; a clash shows as nginx failing to start
	var conf bytes.Buffer
	tmpl := template.Must(template.New("nginx").Parse(nginxConf))
	if err := tmpl.Execute(&conf, map[string]string{"Dir": dir, "Listen": listen, "Upstream": upstream, "Auth": auth}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "startup.log"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			for _, f := range []string{"startup.log", "error.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("nginx %s:\n%s", f, b)
				}
			}
			t.Logf("nginx output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			return "http://" + listen
		}
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(filepath.Join(dir, "startup.log"))
			t.Fatalf("nginx exited before listening: %v\n%s%s", err, out.String(), b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s within 15s", listen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type seen struct {
	path, paid, tokenID, auth string
}

// TestForwardAuthNginx runs the L402 flow through a real nginx whose
// auth_request asks ForwardAuth, in front of a real upstream.
func TestForwardAuthNginx(t *testing.T) {
	n := newNode(t)
	var mu sync.Mutex
	var last seen
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = seen{r.URL.Path, r.Header.Get(proxy.HeaderPaid), r.Header.Get(proxy.HeaderTokenID), r.Header.Get("Authorization")}
		mu.Unlock()
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	defer up.Close()
	lastSeen := func() seen { mu.Lock(); defer mu.Unlock(); s := last; last = seen{}; return s }

	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{
		{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(5)},
		{Name: "free", PathPrefix: "/free/", Mode: proxy.ModeFree},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/l402/auth", p.ForwardAuth())
	auth := httptest.NewServer(mux)
	defer auth.Close()

	base := startNginx(t, strings.TrimPrefix(up.URL, "http://"), strings.TrimPrefix(auth.URL, "http://"))
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	// No token: nginx answers the 402 with the L402 challenge.
	resp, body := get("/paid/doc", nil)
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("no token: %s %q, want 402", resp.Status, body)
	}
	chs, err := l402.ParseChallenges(resp.Header)
	if err != nil || len(chs) == 0 || chs[0].Scheme != l402.SchemeL402 {
		t.Fatalf("no token: challenges %v %v from %q", chs, err, resp.Header.Values("WWW-Authenticate"))
	}
	t.Logf("nginx passed %d WWW-Authenticate value(s): %q", len(resp.Header.Values("WWW-Authenticate")), resp.Header.Values("WWW-Authenticate"))
	if resp.Header.Get(proxy.HeaderStatus) != "" {
		t.Errorf("the internal %s header reached the client", proxy.HeaderStatus)
	}
	if s := lastSeen(); s.path != "" {
		t.Fatalf("upstream was asked without payment: %+v", s)
	}

	// Pay with the memory node, retry with the token.
	pay, err := n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	resp, body = get("/paid/doc", map[string]string{"Authorization": tok.Authorization()})
	if resp.StatusCode != http.StatusOK || body != "upstream /paid/doc" {
		t.Fatalf("paid: %s %q", resp.Status, body)
	}
	s := lastSeen()
	if s.paid != "true" || s.tokenID != tok.ID.TokenID.String() || s.auth != "" {
		t.Fatalf("upstream saw %+v, want paid=true, token %s and no Authorization", s, tok.ID.TokenID)
	}

	// A forged preimage is refused with a fresh challenge.
	forged := *tok
	forged.Preimage[0] ^= 1
	resp, body = get("/paid/doc", map[string]string{"Authorization": forged.Authorization()})
	if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("forged token: %s %q", resp.Status, body)
	}
	if s := lastSeen(); s.path != "" {
		t.Fatalf("upstream was asked with a forged token: %+v", s)
	}

	// Free route: through, marked unpaid; a non-L402 Authorization
	// reaches the upstream.
	resp, body = get("/free/x", map[string]string{"Authorization": "Bearer abc"})
	if resp.StatusCode != http.StatusOK || body != "upstream /free/x" {
		t.Fatalf("free: %s %q", resp.Status, body)
	}
	if s := lastSeen(); s.paid != "false" || s.tokenID != "" || s.auth != "Bearer abc" {
		t.Fatalf("free: upstream saw %+v", s)
	}

	// A client's claim of payment is refused: nginx would forward it.
	resp, body = get("/free/x", map[string]string{proxy.HeaderPaid: "true"})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("free with a client-sent %s: %s %q, want 400", proxy.HeaderPaid, resp.Status, body)
	}
	// Paths that climb from one route into another are refused.
	for _, path := range []string{"/free/..%2fpaid/doc", "/free/%2e%2e/paid/doc", "/paid/%2e%2e/free/x"} {
		resp, body = get(path, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %s %q, want 400", path, resp.Status, body)
		}
		if s := lastSeen(); s.path != "" {
			t.Fatalf("upstream was asked for %s: %+v", path, s)
		}
	}

	// The l402 client pays and retries through nginx on its own.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &l402.Transport{Payer: n, MaxPrice: backend.Sat(5)}}
	cr, err := c.Get(base + "/paid/by-client")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(cr.Body)
	cr.Body.Close()
	if cr.StatusCode != http.StatusOK || string(b) != "upstream /paid/by-client" {
		t.Fatalf("l402 client: %s %q", cr.Status, b)
	}

	// Node down: new challenges are 503 with Retry-After, valid tokens
	// still pass.
	nodeOf(n).SetAvailable(false)
	defer nodeOf(n).SetAvailable(true)
	resp, body = get("/paid/other", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("node down: %s %q %v", resp.Status, body, resp.Header)
	}
	resp, body = get("/paid/again", map[string]string{"Authorization": tok.Authorization()})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("valid token with node down: %s %q", resp.Status, body)
	}
}
