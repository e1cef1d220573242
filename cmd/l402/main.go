// Command l402 fetches L402-protected URLs, paying their invoices with a
// configured Lightning backend under a price limit and budgets, keeping the
// tokens it bought and a log of what it paid in a store file; it also
// serves those abilities to AI agents as an MCP server (l402 mcp).
//
//	l402 get URL --backend URL --max-price SATS [--budget day=5000] [-o FILE]
//	l402 tokens list|show KEY|rm KEY
//	l402 spend [--since 24h] [--by host|hour|day|month] [--json]
//	l402 budget [--json]
//	l402 mcp [--listen 127.0.0.1:8403]
//
// The body goes to standard output; what was paid (amount, fee, payment
// hash) goes to standard error. The backend URL names any registered
// adapter that can pay (for the demo proxy: memory+dev://127.0.0.1:8402);
// it may be given as env:NAME or file:PATH, or through L402_BACKEND, so that
// passwords need not appear on the command line. Every flag can also be
// set in the environment (L402_MAX_PRICE, L402_BUDGET, ...) and in a config
// file (see settings.go).
//
// Exit status of get: 0 success, 1 any other error, 2 usage, 3 over a
// budget or the price limit (nothing paid), 4 payment failed or refused
// (unusable challenge, the backend could not pay), 5 the server answered
// an HTTP error status, 6 network error reaching the server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/version"
	"github.com/l402kit/l402kit/l402"

	// Adapters register their URL schemes.
	// Every adapter registers its URL scheme.
	_ "github.com/l402kit/l402kit/cln"
	_ "github.com/l402kit/l402kit/eclair"
	_ "github.com/l402kit/l402kit/lnd"
	_ "github.com/l402kit/l402kit/lnurl"
	_ "github.com/l402kit/l402kit/memory"
	_ "github.com/l402kit/l402kit/phoenixd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: l402 get URL [flags]
       l402 tokens list|show KEY|rm KEY [flags]
       l402 spend [flags]
       l402 budget [flags]
       l402 mcp [flags]
       l402 --version

get fetches URL; on 402 Payment Required pays the invoice of an L402 (or
LSAT) or Payment charge challenge with the backend (at most --max-price,
within the budgets), in the order of --schemes, and fetches again with the
token or credential. The body goes to standard output, what was paid to
standard error. Tokens and the spend log are kept in the store file
(--store). Every flag may also be set as L402_<NAME> in the environment or
in the config file (--config). Exit status: 0 success, 1 error, 2 usage,
3 over budget or price limit, 4 payment failed, 5 HTTP error, 6 network
error.

tokens manages the stored tokens, spend lists and sums the spend log,
budget shows what is left of each budget, mcp serves the Model Context
Protocol to AI agents (stdio, or streamable HTTP with --listen): tools
fetch, preview_price, spend_log and budgets.

flags of get:
`

// run is the whole program, so tests can drive it: it returns the exit
// status (0 success, 1 failure or HTTP error status, 2 usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		newFlags("get", stderr).PrintDefaults()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprint(stdout, version.Read().String("l402"))
		return 0
	case "get":
	case "tokens", "spend", "budget", "mcp":
		return runStoreCommand(ctx, args[0], args[1:], stdout, stderr)
	case "nwc":
		return runNWC(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "l402: unknown command %q (want get, tokens, spend, budget, mcp or nwc)\n", args[0])
		return 2
	}
	fs := newFlags("get", stderr)
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := applySettings(fs.FlagSet, fs.opts.config); err != nil {
		fmt.Fprintf(stderr, "l402 get: %v\n", err)
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "l402 get: want exactly one URL, got %d arguments\n", len(pos))
		return 2
	}
	o := fs.opts
	if o.maxPrice < 0 || o.maxFee < 0 {
		fmt.Fprintln(stderr, "l402 get: --max-price and --max-fee cannot be negative")
		return 2
	}
	if o.backendURL == "" {
		o.backendURL = os.Getenv("L402_BACKEND")
	}
	if o.backendURL == "" && !o.dryRun {
		fmt.Fprintf(stderr, "l402 get: no backend: set --backend or L402_BACKEND (registered schemes: %s)\n",
			strings.Join(backend.Schemes(), ", "))
		return 2
	}
	if err := get(ctx, pos[0], o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "l402 get: %v\n", err)
		return exitCode(err)
	}
	return 0
}

type options struct {
	backendURL string
	maxPrice   int64 // sat
	maxFee     int64 // sat
	timeout    time.Duration
	headers    headerList
	verbose    bool
	schemes    string

	config   string
	store    string
	noStore  bool
	budgets  budgetList
	dryRun   bool
	output   string
	progress string
	json     bool
	listen   string
	since    time.Duration
	by       string
}

type flagSet struct {
	*flag.FlagSet
	opts *options
}

// newFlags makes the flags of a command (get, mcp, tokens, spend,
// budget).
func newFlags(cmd string, stderr io.Writer) flagSet {
	if stderr == nil {
		stderr = io.Discard
	}
	o := &options{}
	fs := flag.NewFlagSet("l402 "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "config `file` (YAML, one key per flag); default $L402_CONFIG or "+defaultConfigPath())
	fs.StringVar(&o.store, "store", defaultStorePath(), "store `file` for tokens, budgets' counts and the spend log")
	if cmd == "get" || cmd == "mcp" || cmd == "budget" {
		fs.Var(&o.budgets, "budget", "budget `[SCOPE/]PERIOD=SATS` (repeatable): SCOPE total (default), * (each host) or a host; PERIOD hour, day, month or life")
	}
	if cmd == "get" || cmd == "mcp" {
		fs.BoolVar(&o.noStore, "no-store", false, "keep tokens in memory only and keep no spend log (budgets then cannot hold)")
		fs.StringVar(&o.backendURL, "backend", "", "backend `URL` that pays (or env:NAME, file:PATH); default $L402_BACKEND")
		fs.Int64Var(&o.maxPrice, "max-price", 0, "most to pay for one invoice, in `sat`; 0 pays nothing")
		fs.Int64Var(&o.maxFee, "max-fee", 0, "most routing fee per payment, in `sat`; 0 leaves it to the backend")
		fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "limit for the whole fetch, payment included")
		fs.BoolVar(&o.verbose, "v", false, "log the exchange to standard error")
		fs.StringVar(&o.schemes, "schemes", strings.Join(l402.DefaultSchemes, ","), "schemes to pay, in order of preference, of L402, LSAT and Payment (Lightning charges)")
	}
	switch cmd {
	case "get":
		fs.Var(&o.headers, "H", "extra request header `Name: value` (repeatable)")
		fs.BoolVar(&o.dryRun, "dry-run", false, "show what would be paid, and whether the budgets allow it, without paying")
		fs.StringVar(&o.output, "o", "", "write the body to `file` (resuming a partial download where the server takes ranges)")
		fs.StringVar(&o.progress, "progress", "auto", "report download progress on standard error: auto (with -o, on a terminal), on, off")
	case "mcp":
		fs.StringVar(&o.listen, "listen", "", "serve streamable HTTP on `address` (host:port); default: stdio")
	case "spend":
		fs.DurationVar(&o.since, "since", 0, "list payments of the last `duration` only (0: all)")
		fs.StringVar(&o.by, "by", "host", "sum by host, hour, day or month")
	}
	if cmd != "get" && cmd != "mcp" {
		fs.BoolVar(&o.json, "json", false, "print JSON lines")
	}
	return flagSet{FlagSet: fs, opts: o}
}

// parseInterspersed lets flags follow the URL ("get URL --max-price 10"),
// which the flag package alone stops at.
func parseInterspersed(fs flagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

type headerList []string

func (h *headerList) isList() {}

func (h *headerList) String() string { return strings.Join(*h, ", ") }

func (h *headerList) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q is not Name: value", v)
	}
	*h = append(*h, v)
	return nil
}

func get(ctx context.Context, rawURL string, o *options, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := newPayingClient(ctx, o, logger, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	if o.dryRun {
		c.tr.Ledger = dryRunLedger{c.store}
	}
	client := &http.Client{Transport: c.tr}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	for _, h := range o.headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	var dl *download
	if o.output != "" {
		if dl, err = startDownload(o.output, req); err != nil {
			return err
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		if d, ok := asDryRun(err); ok {
			fmt.Fprintln(stderr, d.describe())
			if d.over != nil {
				return fmt.Errorf("dry run: %w", d.over)
			}
			return nil
		}
		report(stderr, c.paid())
		if errors.Is(err, l402.ErrPriceTooHigh) {
			return fmt.Errorf("%w (nothing paid; raise --max-price to accept)", err)
		}
		if errors.Is(err, l402.ErrOverBudget) {
			return fmt.Errorf("%w (nothing paid)", err)
		}
		return classify(err)
	}
	var copyErr error
	if dl != nil {
		copyErr = dl.write(resp, progressOn(o.progress), stderr)
	} else {
		_, copyErr = io.Copy(stdout, resp.Body)
	}
	// Closing the body completes a payment still in flight (single-use
	// routes on hold invoices settle after answering), so report after it.
	resp.Body.Close()
	if o.dryRun {
		fmt.Fprintln(stderr, "dry run: nothing to pay")
	} else {
		report(stderr, c.paid())
	}
	if r, ok, err := l402.ParsePaymentReceipt(resp.Header); ok {
		if err != nil {
			fmt.Fprintf(stderr, "unreadable Payment-Receipt: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "receipt from server: %s %s, reference %s, at %s\n", r.Method, r.Status, r.Reference, r.Timestamp)
		}
	}
	if copyErr != nil {
		return fmt.Errorf("read body: %w", copyErr)
	}
	if resp.StatusCode == http.StatusPaymentRequired {
		// The Transport pays every challenge of the schemes it pays and
		// returns an error for those it cannot, so this one has none.
		return &httpStatusError{fmt.Sprintf("server answered %s (no challenge of the schemes %s; offered: %s)", resp.Status, o.schemes, offered(resp.Header))}
	}
	if resp.StatusCode >= 400 && !(dl != nil && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable) {
		return &httpStatusError{fmt.Sprintf("server answered %s", resp.Status)}
	}
	if dl != nil {
		return dl.finish()
	}
	return nil
}

// splitSchemes reads --schemes: names separated by commas.
func splitSchemes(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// offered names the authentication schemes of a response's challenges, by
// the first word of each WWW-Authenticate line.
func offered(h http.Header) string {
	var schemes []string
	for _, v := range h.Values(l402.HeaderWWWAuthenticate) {
		if s, _, _ := strings.Cut(strings.TrimSpace(v), " "); s != "" {
			schemes = append(schemes, s)
		}
	}
	if len(schemes) == 0 {
		return "nothing"
	}
	return strings.Join(schemes, ", ")
}

// report says what was paid: the money is gone whatever became of the
// request.
func report(w io.Writer, paid []l402.Receipt) {
	if len(paid) == 0 {
		fmt.Fprintln(w, "nothing paid")
	}
	for _, r := range paid {
		fmt.Fprintf(w, "paid %s (fee %s) to %s, payment hash %s\n", r.Amount, r.Fee, r.Origin, r.PaymentHash)
	}
}

// schemeOf names a backend URL without its credentials.
func schemeOf(u string) string {
	s, _, _ := strings.Cut(u, ":")
	return s
}

// exchangeLog logs each HTTP request the client sends and the status it
// gets (-v): the first 402, and the retry with the token. The token itself
// is never logged.
type exchangeLog struct {
	base http.RoundTripper
	log  *slog.Logger
}

func (e exchangeLog) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := e.base.RoundTrip(r)
	token := l402.IsAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		e.log.InfoContext(r.Context(), "http", "method", r.Method, "url", r.URL.Redacted(), "token", token, "err", err)
		return nil, err
	}
	e.log.InfoContext(r.Context(), "http", "method", r.Method, "url", r.URL.Redacted(), "token", token, "status", resp.Status)
	return resp, nil
}
