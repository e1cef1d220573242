package fronttest_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/internal/testenv/fronttest"
	"github.com/l402kit/l402kit/proxy"
)

// confusion lists request targets that decoding, cleaning or an upstream's
// own normalization could read differently; every one is sent as written
// (like curl --path-as-is). With /paid/ sold and everything else free, none
// may deliver paid content without a token.
// confusionCase is a request target to try; benign ones name a free
// resource under every reading and may be served.
type confusionCase struct {
	name, target string
	benign       bool
}

var confusion = []confusionCase{
	{"encoded dot segment out of paid", "/paid/%2e%2e/free/x", false},
	{"encoded dot segment into paid", "/free/%2e%2e/paid/x", false},
	{"upper-case encoded dots", "/free/%2E%2E/paid/x", false},
	{"half-encoded dots", "/free/.%2e/paid/x", false},
	{"encoded slash", "/free/..%2fpaid/x", false},
	{"upper-case encoded slash", "/free/..%2Fpaid/x", false},
	{"encoded dots and slash", "/free/%2e%2e%2fpaid/x", false},
	{"encoded backslash", "/free/..%5cpaid/x", false},
	{"upper-case encoded backslash", "/free/..%5Cpaid/x", false},
	{"raw backslash", `/free/..\paid/x`, false},
	{"segment parameter on dots", "/free/..;/paid/x", false},
	{"segment parameter on paid", "/paid;x=1/x", false},
	{"encoded semicolon", "/free/..%3b/paid/x", false},
	{"double slash", "//paid/x", false},
	{"double slash before dots", "/free//../paid/x", false},
	{"literal dot segments", "/free/../paid/x", false},
	{"dot segment before paid", "/./paid/x", false},
	{"encoded letter", "/%70aid/x", false},
	{"upper-case encoded letter", "/%50aid/x", false},
	{"encoded slash after paid", "/paid%2fx", false},
	{"double-encoded dots", "/free/%252e%252e/paid/x", false},
	{"encoded NUL", "/free/%00/../paid/x", false},
	{"dots in the query", "/free/x?/../paid/x", true},
	{"encoded question mark", "/free/%3f/../../paid/x", false},
	{"encoded hash", "/free/%23/../../paid/x", false},
}

// confusionResult is one row of the report a run logs.
type confusionResult struct {
	front, name, target string
	status              int
	authURI             string // X-Forwarded-Uri the endpoint was asked about; "" when not asked
	upstreamURI         string // "" when the upstream was not asked
	body                string
}

func (r confusionResult) String() string {
	auth := "endpoint not asked"
	if r.authURI != "" {
		auth = "endpoint asked about " + r.authURI
	}
	up := "upstream not asked"
	if r.upstreamURI != "" {
		up = "upstream got " + r.upstreamURI
	}
	body := strings.TrimSpace(r.body)
	if len(body) > 50 {
		body = body[:50] + "..."
	}
	return fmt.Sprintf("%-14s %-34s %-28s -> %3d, %s, %s, body %q", r.front, r.name, r.target, r.status, auth, up, body)
}

// runConfusion sends every case to addr. No case may deliver paid content
// (a body with paidMark, or a selling handler of up running unpaid), and
// a case that is not benign is either refused before the upstream, or
// reaches the upstream as exactly the URI the forward-auth endpoint
// authorized. up and auth may be nil (an upstream that records nothing;
// reverse-proxy mode, no endpoint).
func runConfusion(t *testing.T, front, addr string, up *upstream, auth *authServer, cases []confusionCase) {
	var rows []string
	for _, c := range cases {
		resp, body, err := rawGet(addr, c.target, nil)
		r := confusionResult{front: front, name: c.name, target: c.target, body: body}
		if err != nil {
			r.body = "no response: " + err.Error()
		} else {
			r.status = resp.StatusCode
		}
		if auth != nil {
			r.authURI = auth.lastURI()
		}
		if up != nil {
			if s := up.take(); s != nil {
				r.upstreamURI = s.uri
			}
			if l := up.takeLeaks(); len(l) > 0 {
				t.Errorf("%s %s: a selling handler ran unpaid for %q", front, c.target, l)
			}
		}
		if strings.Contains(body, paidMark) {
			t.Errorf("%s %s (%s): paid content without a token: %d %q", front, c.target, c.name, r.status, body)
		}
		if !c.benign && up != nil && r.upstreamURI != "" && (auth == nil || r.upstreamURI != r.authURI) {
			t.Errorf("%s %s (%s): reached the upstream as %q, authorized as %q", front, c.target, c.name, r.upstreamURI, r.authURI)
		}
		rows = append(rows, r.String())
	}
	t.Logf("path confusion through %s:\n%s", front, strings.Join(rows, "\n"))
}

// TestPathConfusionFronts sends the confusion cases through each front
// server asking the forward-auth endpoint, in front of a Go ServeMux.
func TestPathConfusionFronts(t *testing.T) {
	for _, fc := range fronts {
		t.Run(fc.name, func(t *testing.T) {
			n := newNode(t)
			up := newUpstream(t)
			p, err := proxy.New(proxy.Config{Backend: over(t, n, true), Routes: routes()})
			if err != nil {
				t.Fatal(err)
			}
			auth := newAuthServer(t, p)
			f := startFront(t, fc, up, auth)
			runConfusion(t, fc.name, f.Addr, up, auth, confusion)
		})
	}
}

// TestPathConfusionReverseProxy sends the confusion cases to the proxy
// itself (reverse-proxy mode) in front of an upstream that resolves dot
// segments itself (nginx serving files) and one that does not (a Go
// ServeMux, which redirects to the cleaned path).
func TestPathConfusionReverseProxy(t *testing.T) {
	t.Run("nginx-static", func(t *testing.T) {
		root, err := os.MkdirTemp("", "l402kit-static-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(root) })
		files := map[string]string{
			"paid/x": paidMark + " x", "paid/secret.txt": paidMark + " secret", "free/x": freeMark + " x",
		}
		for name, content := range files {
			path := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// nginx's workers run as nobody: the tree must be world-readable.
		if err := os.Chmod(root, 0o755); err != nil {
			t.Fatal(err)
		}
		static := fronttest.NginxStatic(t, root)
		gate := reverseProxy(t, static.URL)
		cases := append([]confusionCase{{"a file under paid/", "/free/%2e%2e/paid/secret.txt", false}}, confusion...)
		runConfusion(t, "proxy>nginx", gate, nil, nil, cases)
	})
	t.Run("go-servemux", func(t *testing.T) {
		up := newUpstream(t)
		gate := reverseProxy(t, up.srv.URL)
		runConfusion(t, "proxy>servemux", gate, up, nil, confusion)
	})
}

// reverseProxy runs the proxy in reverse-proxy mode with routes() in front
// of upstream and returns its host:port.
func reverseProxy(t *testing.T, upstream string) string {
	t.Helper()
	rs := routes()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		rs[i].Upstream = u
	}
	n := newNode(t)
	p, err := proxy.New(proxy.Config{Backend: over(t, n, true), Routes: rs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
