package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/nwc"
)

const nwcUsage = `usage: l402 nwc serve --backend URL --relay URL [--relay URL ...] [flags]

Serves the backend as a Nostr Wallet Connect (NIP-47) wallet on the relays
and prints one connection URI (nostr+walletconnect://...) on standard
output; any NWC client, l402kit's own nwc adapter included, opens it. Runs
until interrupted. The URI holds the client's secret: treat it as one.

flags:
`

type relayList []string

func (r *relayList) String() string     { return strings.Join(*r, ",") }
func (r *relayList) Set(v string) error { *r = append(*r, v); return nil }

// runNWC is "l402 nwc ...".
func runNWC(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("l402 nwc serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var relays relayList
	backendURL := fs.String("backend", "", "backend URL to serve (or L402_BACKEND)")
	fs.Var(&relays, "relay", "relay URL (ws:// or wss://) to serve on; repeat for several")
	methods := fs.String("methods", "", "comma-separated NIP-47 methods the connection may call (default: all the backend can do)")
	maxPayment := fs.Int64("max-payment", 0, "largest single payment in sat (0: no cap)")
	budget := fs.Int64("budget", 0, "most the connection pays per --budget-period in sat, fees included (0: no budget)")
	period := fs.Duration("budget-period", 24*time.Hour, "the budget's window")
	fs.Usage = func() { fmt.Fprint(stderr, nwcUsage); fs.PrintDefaults() }
	if len(args) == 0 || args[0] != "serve" {
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *backendURL == "" {
		*backendURL = os.Getenv("L402_BACKEND")
	}
	if *backendURL == "" || len(relays) == 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "l402 nwc serve: need --backend and at least one --relay, and no arguments")
		return 2
	}
	b, err := backend.Open(ctx, *backendURL)
	if err != nil {
		fmt.Fprintf(stderr, "l402 nwc serve: backend: %v\n", err)
		return 1
	}
	defer b.Close()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	svc, err := nwc.NewService(ctx, nwc.ServiceConfig{Backend: b, Relays: relays, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "l402 nwc serve: %v\n", err)
		return 1
	}
	defer svc.Close()
	p := nwc.Permissions{MaxPayment: backend.Sat(*maxPayment), Budget: backend.Sat(*budget), BudgetPeriod: *period}
	if *methods != "" {
		p.Methods = strings.Split(*methods, ",")
	}
	uri, err := svc.Connect(ctx, p)
	if err != nil {
		fmt.Fprintf(stderr, "l402 nwc serve: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, uri)
	log.Info("serving NWC", "relays", relays.String(), "abilities", backend.Abilities(b))
	<-ctx.Done()
	return 0
}
