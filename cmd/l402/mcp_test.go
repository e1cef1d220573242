package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402kit/l402kit/backend"
)

// mcpClient connects the SDK's own client to the server through t.
func mcpClient(t *testing.T, ctx context.Context, tr mcp.Transport) *mcp.ClientSession {
	t.Helper()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil).Connect(ctx, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// call calls a tool and decodes its JSON result into out; it returns the
// result's text and whether it is an error.
func call(t *testing.T, ctx context.Context, cs *mcp.ClientSession, tool string, args map[string]any, out any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: %d contents", tool, len(res.Content))
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if !res.IsError && out != nil {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			t.Fatalf("%s: %v in %s", tool, err, text)
		}
	}
	return text, res.IsError
}

func newMCPTestServer(t *testing.T, s *shop, store string) (*mcp.Server, *payingClient) {
	t.Helper()
	o := newFlags("mcp", nil).opts
	o.backendURL, o.maxPrice, o.timeout, o.store = s.payURL, 10, time.Minute, store
	if err := o.budgets.Set("life=15"); err != nil {
		t.Fatal(err)
	}
	c, err := newPayingClient(context.Background(), o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return newMCPServer(c, o), c
}

func TestMCPToolsInProcess(t *testing.T) {
	s := newShop(t, backend.Sat(10))
	store := filepath.Join(t.TempDir(), "l402.db")
	server, c := newMCPTestServer(t, s, store)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clientT, serverT := mcp.NewInMemoryTransports()
	ss, err := server.Connect(ctx, serverT, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs := mcpClient(t, ctx, clientT)

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "budgets,fetch,preview_price,spend_log" {
		t.Fatalf("tools %v", names)
	}

	// A preview reads the price and pays nothing.
	var pv previewOut
	call(t, ctx, cs, "preview_price", map[string]any{"url": s.srv.URL + "/paid/a"}, &pv)
	if !pv.PaymentRequired || pv.AmountMsat != 10_000 || !pv.WouldPay || pv.Scheme != "L402" {
		t.Fatalf("preview %+v", pv)
	}
	var sp spendOut
	if call(t, ctx, cs, "spend_log", nil, &sp); len(sp.Entries) != 0 {
		t.Fatalf("a preview paid: %+v", sp)
	}

	var f fetchOut
	call(t, ctx, cs, "fetch", map[string]any{"url": s.srv.URL + "/paid/a"}, &f)
	if f.Status != 200 || f.Body != "the paid body\n" || len(f.Paid) != 1 || f.Paid[0].AmountMsat != 10_000 {
		t.Fatalf("fetch %+v", f)
	}
	// The token is kept: the next fetch on the route pays nothing.
	call(t, ctx, cs, "fetch", map[string]any{"url": s.srv.URL + "/paid/b"}, &f)
	if f.Status != 200 || len(f.Paid) != 0 {
		t.Fatalf("second fetch %+v", f)
	}
	// Without it, another 10 sat would pass the 15 sat budget: refused,
	// saying which budget and what is left, and nothing paid.
	if ok, err := c.store.RemoveToken(s.srv.URL + "/paid/"); !ok || err != nil {
		t.Fatalf("rm token: %v %v", ok, err)
	}
	text, isErr := call(t, ctx, cs, "fetch", map[string]any{"url": s.srv.URL + "/paid/c"}, nil)
	if !isErr || !strings.Contains(text, "over budget: total life budget 15 sat") || !strings.Contains(text, "5 sat left") {
		t.Fatalf("fetch over budget: error %v %q", isErr, text)
	}
	call(t, ctx, cs, "preview_price", map[string]any{"url": s.srv.URL + "/paid/c"}, &pv)
	if !pv.PaymentRequired || pv.WouldPay || !strings.Contains(pv.Refusal, "5 sat left") {
		t.Fatalf("preview over budget %+v", pv)
	}
	var bo budgetsOut
	call(t, ctx, cs, "budgets", nil, &bo)
	if bo.MaxPriceMsat != 10_000 || len(bo.Budgets) != 1 || bo.Budgets[0].Left != backend.Sat(5) || bo.Budgets[0].Spec != "total/life=15" {
		t.Fatalf("budgets %+v", bo)
	}
	call(t, ctx, cs, "spend_log", map[string]any{"since": "1h"}, &sp)
	if len(sp.Entries) != 1 || sp.SpentMsat != 10_000 || sp.Entries[0].Outcome != "paid" || sp.Entries[0].Host != strings.TrimPrefix(s.srv.URL, "http://") {
		t.Fatalf("spend log %+v", sp)
	}
	if n := s.challenges.Load(); n != 4 {
		t.Fatalf("server issued %d challenges, want 4 (two previews, one paid, one refused)", n)
	}
}

// The same server over streamable HTTP, as l402 mcp --listen serves it.
func TestMCPStreamableHTTP(t *testing.T) {
	s := newShop(t, backend.Sat(10))
	server, _ := newMCPTestServer(t, s, filepath.Join(t.TempDir(), "l402.db"))
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := mcpClient(t, ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL, DisableStandaloneSSE: true})
	var f fetchOut
	call(t, ctx, cs, "fetch", map[string]any{"url": s.srv.URL + "/paid/a"}, &f)
	if f.Status != 200 || len(f.Paid) != 1 {
		t.Fatalf("fetch over HTTP %+v", f)
	}
	var bo budgetsOut
	call(t, ctx, cs, "budgets", nil, &bo)
	if len(bo.Budgets) != 1 || bo.Budgets[0].Left != backend.Sat(5) {
		t.Fatalf("budgets over HTTP %+v", bo)
	}
}

// l402 mcp as an agent host runs it: a child process speaking MCP on its
// standard input and output.
func TestMCPStdioChild(t *testing.T) {
	s := newShop(t, backend.Sat(10))
	store := filepath.Join(t.TempDir(), "l402.db")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"mcp", "--backend", s.payURL, "--max-price", "10", "--store", store, "--budget", "life=15"}
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
	cs := mcpClient(t, ctx, &mcp.CommandTransport{Command: child})
	var f fetchOut
	call(t, ctx, cs, "fetch", map[string]any{"url": s.srv.URL + "/paid/a"}, &f)
	if f.Status != 200 || f.Body != "the paid body\n" || len(f.Paid) != 1 {
		t.Fatalf("fetch over stdio %+v", f)
	}
	var bo budgetsOut
	call(t, ctx, cs, "budgets", nil, &bo)
	if len(bo.Budgets) != 1 || bo.Budgets[0].Left != backend.Sat(5) {
		t.Fatalf("budgets over stdio %+v", bo)
	}
}
