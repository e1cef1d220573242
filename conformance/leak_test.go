package conformance

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// idleClient makes a request to srv and leaves its connection idle in the
// client's pool: the connection's goroutines run on.
func idleClient(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c
}

// quiescer is a harness whose own side is an HTTP client, as an nwc
// harness's wallet service talks to its node.
type quiescer struct{ own *http.Client }

func (q quiescer) Quiesce() { q.own.CloseIdleConnections() }

// TestLeakedTellsTheHarnessSideApart checks the Close case's leak count:
// a kept-alive connection of the Backend (a driver that forgets to close
// its pool) and a goroutine it left blocked are reported, while the
// harness's own kept-alive connection, quiesced, is not.
func TestLeakedTellsTheHarnessSideApart(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	before := goroutines()

	h := quiescer{own: idleClient(t, srv)}
	leaky := idleClient(t, srv) // the Backend's, never closed
	stop := make(chan struct{})
	go blockedDriverGoroutine(stop)

	left := leaked(before, h, time.Second)
	var conns, blocked int
	for _, g := range left {
		switch {
		case strings.Contains(g, "net/http.(*persistConn)"):
			conns++
		case strings.Contains(g, "blockedDriverGoroutine"):
			blocked++
		default:
			t.Errorf("reported a goroutine that is neither the Backend's connection nor its blocked goroutine:\n%s", g)
		}
	}
	// One connection of the Backend's client: its read and write loops.
	// The harness's connection, quiesced, would make it four.
	if conns != 2 || blocked != 1 {
		t.Errorf("reported %d connection goroutines (want 2, the Backend's read and write loops) and %d blocked (want 1):\n%s",
			conns, blocked, strings.Join(left, "\n\n"))
	}

	// Without the Quiescer the harness's connection counts as well: the
	// reason for the interface.
	h.own = idleClient(t, srv)
	if n := countConns(leaked(before, nil, 200*time.Millisecond)); n != 4 {
		t.Errorf("without Quiesce: %d connection goroutines, want 4 (the harness's and the Backend's)", n)
	}
	h.own.CloseIdleConnections()

	close(stop)
	leaky.CloseIdleConnections()
	if left := leaked(before, h, 5*time.Second); len(left) > 0 {
		t.Errorf("after the Backend ended its goroutines, still reported:\n%s", strings.Join(left, "\n\n"))
	}
}

func blockedDriverGoroutine(stop chan struct{}) { <-stop }

func countConns(stacks []string) int {
	n := 0
	for _, g := range stacks {
		if strings.Contains(g, "net/http.(*persistConn)") {
			n++
		}
	}
	return n
}
