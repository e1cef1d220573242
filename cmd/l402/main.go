// Command l402 fetches L402-protected URLs, paying their invoices with a
// configured Lightning backend under a price limit.
//
//	l402 get URL --backend URL --max-price SATS
//
// The body goes to standard output; what was paid (amount, fee, payment
// hash) goes to standard error. The backend URL names any registered
// adapter that can pay (for the demo proxy: memory+dev://127.0.0.1:8402);
// it may be given as env:NAME or file:PATH, or through L402_BACKEND, so that
// passwords need not appear on the command line.
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

Fetches URL; on 402 Payment Required pays the invoice of an L402 (or LSAT)
or Payment charge challenge with the backend (at most --max-price), in the
order of --schemes, and fetches again with the token or credential. The
body goes to standard output, what was paid to standard error.

flags:
`

// run is the whole program, so tests can drive it: it returns the exit
// status (0 success, 1 failure or HTTP error status, 2 usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		newFlags(stderr).PrintDefaults()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] != "get" {
		fmt.Fprintf(stderr, "l402: unknown command %q (want get)\n", args[0])
		return 2
	}
	fs := newFlags(stderr)
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
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
	if o.backendURL == "" {
		fmt.Fprintf(stderr, "l402 get: no backend: set --backend or L402_BACKEND (registered schemes: %s)\n",
			strings.Join(backend.Schemes(), ", "))
		return 2
	}
	if err := get(ctx, pos[0], o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "l402 get: %v\n", err)
		return 1
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
}

type flagSet struct {
	*flag.FlagSet
	opts *options
}

func newFlags(stderr io.Writer) flagSet {
	o := &options{}
	fs := flag.NewFlagSet("l402 get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.backendURL, "backend", "", "backend `URL` that pays (or env:NAME, file:PATH); default $L402_BACKEND")
	fs.Int64Var(&o.maxPrice, "max-price", 0, "most to pay for one invoice, in `sat`; 0 pays nothing")
	fs.Int64Var(&o.maxFee, "max-fee", 0, "most routing fee per payment, in `sat`; 0 leaves it to the backend")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "limit for the whole fetch, payment included")
	fs.Var(&o.headers, "H", "extra request header `Name: value` (repeatable)")
	fs.BoolVar(&o.verbose, "v", false, "log the exchange to standard error")
	fs.StringVar(&o.schemes, "schemes", strings.Join(l402.DefaultSchemes, ","), "schemes to pay, in order of preference, of L402, LSAT and Payment (Lightning charges)")
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
	backendURL, err := backend.ReadSecret(o.backendURL)
	if err != nil {
		return err
	}
	b, err := backend.Open(ctx, backendURL)
	if err != nil {
		return err
	}
	defer b.Close()
	if !b.Supports(backend.AbilityPay) {
		return fmt.Errorf("backend %s cannot pay invoices (abilities: %v)", schemeOf(backendURL), backend.Abilities(b))
	}
	payer := b
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var paid []l402.Receipt
	var base http.RoundTripper // nil: http.DefaultTransport
	if o.verbose {
		base = exchangeLog{base: http.DefaultTransport, log: logger}
	}
	tr := &l402.Transport{
		Base:      base,
		Payer:     payer,
		MaxPrice:  backend.Sat(o.maxPrice),
		MaxFee:    backend.Sat(o.maxFee),
		Logger:    logger,
		OnPayment: func(_ context.Context, r l402.Receipt) { paid = append(paid, r) },
		// A slow payment may take the whole fetch's time, not less.
		PayTimeout: o.timeout,
		Schemes:    splitSchemes(o.schemes),
	}
	client := &http.Client{Transport: tr}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	for _, h := range o.headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := client.Do(req)
	if err != nil {
		report(stderr, paid)
		if errors.Is(err, l402.ErrPriceTooHigh) {
			return fmt.Errorf("%w (nothing paid; raise --max-price to accept)", err)
		}
		return err
	}
	_, copyErr := io.Copy(stdout, resp.Body)
	// Closing the body completes a payment still in flight (single-use
	// routes on hold invoices settle after answering), so report after it.
	resp.Body.Close()
	report(stderr, paid)
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
		return fmt.Errorf("server answered %s (no challenge of the schemes %s; offered: %s)", resp.Status, o.schemes, offered(resp.Header))
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("server answered %s", resp.Status)
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
