package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// The proxy benchmarks run a real upstream and a real front server on
// loopback and drive them with parallel clients, so the baseline (a plain
// httputil.ReverseProxy) and the L402 proxy with a valid token differ only
// in the gate. Compare their ns/op from the same run:
//
//	go test -run '^$' -bench 'Front' -benchmem -count 5 ./proxy/

func benchUpstream(b *testing.B) *url.URL {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from upstream")
	}))
	b.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	return u
}

func drive(b *testing.B, target string, auth string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, target, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %s", resp.Status)
				return
			}
		}
	})
}

func BenchmarkFrontPlainReverseProxy(b *testing.B) {
	u := benchUpstream(b)
	front := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	b.Cleanup(front.Close)
	drive(b, front.URL+"/x", "")
}

func BenchmarkFrontL402ValidToken(b *testing.B) {
	u := benchUpstream(b)
	n := newNode(b)
	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1), Upstream: u}}})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(p)
	b.Cleanup(front.Close)
	// Buy one token through the real flow, then reuse it.
	var tok string
	c := &http.Client{Transport: &l402.Transport{Payer: n, MaxPrice: backend.Sat(1), OnPayment: func(context.Context, l402.Receipt) {}}}
	resp, err := c.Get(front.URL + "/x")
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	tok = resp.Request.Header.Get("Authorization")
	if tok == "" {
		b.Fatal("the client's retried request carries no Authorization")
	}
	drive(b, front.URL+"/x", tok)
}

// BenchmarkChallenge measures minting a challenge on the memory backend:
// a fresh invoice, root key and macaroon per request.
func BenchmarkChallenge(b *testing.B) {
	n := newNode(b)
	p, err := proxy.New(proxy.Config{Backend: n, ChallengesPerMinute: -1, Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		b.Fatal(err)
	}
	h := p.Middleware(http.NotFoundHandler())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
			if w.Code != http.StatusPaymentRequired {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}

// BenchmarkGateValidToken isolates the gate: the middleware in front of a
// handler that writes nothing, with a valid token, no network.
func BenchmarkGateValidToken(b *testing.B) {
	n := newNode(b)
	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		b.Fatal(err)
	}
	h := p.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	h.ServeHTTP(w, r)
	chs, err := l402.ParseChallenges(w.Result().Header)
	if err != nil || len(chs) == 0 {
		b.Fatal("no challenge", err)
	}
	pay, err := n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	if err != nil {
		b.Fatal(err)
	}
	auth := tok.Authorization()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
