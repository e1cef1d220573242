package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/l402/clientstore"
)

// runMCP serves the Model Context Protocol: on stdio (an agent host starts
// l402 mcp as its child), or streamable HTTP with --listen. Logs go to
// standard error: on stdio, standard output is the protocol.
func runMCP(ctx context.Context, o *options, stderr io.Writer) error {
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if o.backendURL == "" {
		return fmt.Errorf("no backend: set --backend or L402_BACKEND (registered schemes: %s)", strings.Join(backend.Schemes(), ", "))
	}
	c, err := newPayingClient(ctx, o, logger, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	server := newMCPServer(c, o)
	if o.listen == "" {
		return server.Run(ctx, &mcp.StdioTransport{})
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		logger.Warn("l402 mcp: listening beyond loopback: whoever reaches this port can spend within the budgets", "addr", ln.Addr().String())
	}
	logger.Info("l402 mcp: serving streamable HTTP", "url", "http://"+ln.Addr().String()+"/")
	srv := &http.Server{
		Handler:           mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// mcpVersion is the server's version as MCP clients see it.
const mcpVersion = "1"

// Tool inputs and outputs. Their field comments become the tools' JSON
// schemas, which is what an agent reads to call them.
type (
	fetchIn struct {
		URL      string            `json:"url" jsonschema:"the http or https URL to GET"`
		Headers  map[string]string `json:"headers,omitempty" jsonschema:"extra request headers"`
		MaxBytes int               `json:"max_bytes,omitempty" jsonschema:"most bytes of the body to return (default 100000)"`
	}
	paymentOut struct {
		Host        string `json:"host"`
		Scheme      string `json:"scheme"`
		AmountMsat  int64  `json:"amount_msat"`
		FeeMsat     int64  `json:"fee_msat"`
		PaymentHash string `json:"payment_hash"`
	}
	fetchOut struct {
		Status      int    `json:"status"`
		ContentType string `json:"content_type,omitempty"`
		// Body is the body as text when it is UTF-8, else BodyBase64.
		Body       string       `json:"body,omitempty"`
		BodyBase64 string       `json:"body_base64,omitempty"`
		Truncated  bool         `json:"truncated,omitempty"`
		Paid       []paymentOut `json:"paid"`
	}
	previewIn struct {
		URL string `json:"url" jsonschema:"the http or https URL to price"`
	}
	previewOut struct {
		// PaymentRequired is false when the URL answered without a
		// challenge of a scheme this client pays.
		PaymentRequired bool   `json:"payment_required"`
		Status          int    `json:"status"`
		Host            string `json:"host,omitempty"`
		Scheme          string `json:"scheme,omitempty"`
		AmountMsat      int64  `json:"amount_msat,omitempty"`
		PaymentHash     string `json:"payment_hash,omitempty"`
		// WouldPay says whether fetch would pay it now: within
		// max_price_msat and every budget; Refusal says why not.
		WouldPay     bool   `json:"would_pay"`
		Refusal      string `json:"refusal,omitempty"`
		MaxPriceMsat int64  `json:"max_price_msat"`
	}
	spendIn struct {
		Since string `json:"since,omitempty" jsonschema:"a Go duration such as 24h: only payments this recent (default: all)"`
		Limit int    `json:"limit,omitempty" jsonschema:"at most this many of the latest entries (default 100)"`
	}
	spendEntry struct {
		Time        time.Time `json:"time"`
		Host        string    `json:"host"`
		URL         string    `json:"url"`
		AmountMsat  int64     `json:"amount_msat"`
		FeeMsat     int64     `json:"fee_msat"`
		PaymentHash string    `json:"payment_hash"`
		Preimage    string    `json:"preimage,omitempty"`
		Scheme      string    `json:"scheme"`
		// Outcome is pending, paid, failed, unknown or recovered.
		Outcome string `json:"outcome"`
		Error   string `json:"error,omitempty"`
	}
	spendOut struct {
		Entries []spendEntry `json:"entries"`
		// Spent sums what the listed entries count against budgets.
		SpentMsat int64 `json:"spent_msat"`
	}
	budgetsIn  struct{}
	budgetsOut struct {
		MaxPriceMsat int64                     `json:"max_price_msat"`
		Budgets      []clientstore.BudgetState `json:"budgets"`
	}
)

// newMCPServer makes the MCP server over a paying client: tools fetch,
// preview_price, spend_log and budgets.
func newMCPServer(c *payingClient, o *options) *mcp.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "l402", Title: "l402kit paying HTTP client", Version: mcpVersion}, &mcp.ServerOptions{
		Instructions: "fetch GETs a URL and pays its L402 or Payment challenge from the operator's Lightning wallet, " +
			"within a per-request price limit and budgets the operator set; a refusal says which budget and what is left. " +
			"Use preview_price to learn a price without paying, budgets for what is left, spend_log for what was paid.",
	})
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(server, &mcp.Tool{
		Name:        "fetch",
		Description: "GET a URL, paying its HTTP 402 challenge (L402 or Payment) within the per-request price limit and the budgets; paid tokens are kept and reused.",
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in fetchIn) (*mcp.CallToolResult, fetchOut, error) {
		out, err := mcpFetch(ctx, c, o, in)
		return nil, out, err
	})
	mcp.AddTool(server, &mcp.Tool{
		Name:        "preview_price",
		Description: "Ask a URL what it costs without paying: the price of its 402 challenge, and whether fetch would pay it now.",
		Annotations: readOnly,
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in previewIn) (*mcp.CallToolResult, previewOut, error) {
		out, err := mcpPreview(ctx, c, o, in)
		return nil, out, err
	})
	mcp.AddTool(server, &mcp.Tool{
		Name:        "spend_log",
		Description: "The payments made: time, host, URL, amount, fee, payment hash, scheme and outcome.",
		Annotations: readOnly,
	}, func(_ context.Context, _ *mcp.CallToolRequest, in spendIn) (*mcp.CallToolResult, spendOut, error) {
		out, err := mcpSpend(c, in)
		return nil, out, err
	})
	mcp.AddTool(server, &mcp.Tool{
		Name:        "budgets",
		Description: "The per-request price limit and every budget with what is spent and left in its current window.",
		Annotations: readOnly,
	}, func(_ context.Context, _ *mcp.CallToolRequest, _ budgetsIn) (*mcp.CallToolResult, budgetsOut, error) {
		out := budgetsOut{MaxPriceMsat: int64(c.tr.MaxPrice), Budgets: []clientstore.BudgetState{}}
		if c.store == nil {
			return nil, out, nil
		}
		st, err := c.store.Remaining("")
		if st != nil {
			out.Budgets = st
		}
		return nil, out, err
	})
	return server
}

func newGet(ctx context.Context, rawURL string, headers map[string]string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, fmt.Errorf("url %q is not http or https", rawURL)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req, nil
}

func mcpFetch(ctx context.Context, c *payingClient, o *options, in fetchIn) (fetchOut, error) {
	out := fetchOut{Paid: []paymentOut{}}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := newGet(ctx, in.URL, in.Headers)
	if err != nil {
		return out, err
	}
	resp, err := (&http.Client{Transport: c.tr}).Do(req)
	if err != nil {
		return out, err
	}
	limit := in.MaxBytes
	if limit <= 0 {
		limit = 100_000
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	resp.Body.Close()
	if r, ok := l402.ReceiptFromResponse(resp); ok {
		out.Paid = append(out.Paid, paymentOut{Host: resp.Request.URL.Host, Scheme: r.Scheme, AmountMsat: int64(r.Amount), FeeMsat: int64(r.Fee), PaymentHash: r.PaymentHash.String()})
	}
	if err != nil {
		return out, fmt.Errorf("read body: %w", err)
	}
	if len(body) > limit {
		body, out.Truncated = body[:limit], true
	}
	out.Status, out.ContentType = resp.StatusCode, resp.Header.Get("Content-Type")
	if utf8.Valid(body) {
		out.Body = string(body)
	} else {
		out.BodyBase64 = base64.StdEncoding.EncodeToString(body)
	}
	return out, nil
}

// mcpPreview sends the request without any stored token, through a
// Transport whose Ledger refuses every payment: the 402's price is read,
// checked against the limit and budgets, and nothing is paid or spent.
func mcpPreview(ctx context.Context, c *payingClient, o *options, in previewIn) (previewOut, error) {
	out := previewOut{MaxPriceMsat: int64(c.tr.MaxPrice)}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := newGet(ctx, in.URL, nil)
	if err != nil {
		return out, err
	}
	tr := &l402.Transport{
		Base: c.tr.Base, Payer: c.tr.Payer, MaxPrice: c.tr.MaxPrice, MaxFee: c.tr.MaxFee,
		Schemes: c.tr.Schemes, Logger: c.tr.Logger, Ledger: dryRunLedger{c.store},
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		discardBody(resp)
		out.Status = resp.StatusCode
		return out, nil
	}
	if q, ok := asDryRun(err); ok {
		out.PaymentRequired, out.Status = true, http.StatusPaymentRequired
		out.Host, out.Scheme, out.AmountMsat, out.PaymentHash = q.intent.Host, q.intent.Scheme, int64(q.intent.Amount), q.intent.PaymentHash.String()
		out.WouldPay = q.over == nil
		if q.over != nil {
			out.Refusal = q.over.Error()
		}
		return out, nil
	}
	var ce *l402.ChallengeError
	if errors.As(err, &ce) && errors.Is(err, l402.ErrPriceTooHigh) {
		out.PaymentRequired, out.Status, out.Scheme, out.Refusal = true, http.StatusPaymentRequired, ce.Scheme, err.Error()
		return out, nil
	}
	return out, err
}

func discardBody(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func mcpSpend(c *payingClient, in spendIn) (spendOut, error) {
	out := spendOut{Entries: []spendEntry{}}
	if c.store == nil {
		return out, errors.New("no store: the spend log is kept in the store (started with --no-store)")
	}
	var since time.Time
	if in.Since != "" {
		d, err := time.ParseDuration(in.Since)
		if err != nil {
			return out, fmt.Errorf("since: %w", err)
		}
		since = time.Now().Add(-d)
	}
	recs, err := c.store.Spends(since)
	if err != nil {
		return out, err
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 100
	}
	if len(recs) > limit {
		recs = recs[len(recs)-limit:]
	}
	for _, r := range recs {
		out.SpentMsat += int64(r.Spent())
		out.Entries = append(out.Entries, spendEntry{
			Time: r.Time, Host: r.Host, URL: r.URL, AmountMsat: int64(r.Amount), FeeMsat: int64(r.Fee),
			PaymentHash: r.PaymentHash.String(), Preimage: r.Preimage, Scheme: r.Scheme, Outcome: r.Outcome, Error: r.Error,
		})
	}
	return out, nil
}
