package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/l402/clientstore"
)

// runStoreCommand runs the commands other than get: tokens, spend, budget
// and mcp.
func runStoreCommand(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(cmd, stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := applySettings(fs.FlagSet, fs.opts.config); err != nil {
		fmt.Fprintf(stderr, "l402 %s: %v\n", cmd, err)
		return exitUsage
	}
	o := fs.opts
	if cmd == "mcp" {
		if len(pos) != 0 {
			fmt.Fprintf(stderr, "l402 mcp: unexpected arguments %q\n", pos)
			return exitUsage
		}
		if err := runMCP(ctx, o, stderr); err != nil {
			fmt.Fprintf(stderr, "l402 mcp: %v\n", err)
			return exitError
		}
		return exitOK
	}
	s, err := clientstore.Open(o.store, clientstore.Options{Budgets: o.budgets})
	if err != nil {
		fmt.Fprintf(stderr, "l402 %s: %v\n", cmd, err)
		return exitError
	}
	switch cmd {
	case "tokens":
		err = tokensCommand(s, pos, o.json, stdout)
	case "spend":
		if len(pos) != 0 {
			err = usageError("spend takes no arguments")
		} else {
			err = spendCommand(s, o, stdout)
		}
	case "budget":
		if len(pos) != 0 {
			err = usageError("budget takes no arguments")
		} else {
			err = budgetCommand(s, o.json, stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "l402 %s: %v\n", cmd, err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

type usageError string

func (e usageError) Error() string { return string(e) }

func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// tokenView is a stored token as tokens list and show print it: the
// preimage is left out (the token is a bearer credential).
type tokenView struct {
	Key         string              `json:"key"`
	State       string              `json:"state"`
	PaymentHash backend.PaymentHash `json:"payment_hash"`
	Scheme      string              `json:"scheme,omitempty"`
	Amount      backend.MilliSat    `json:"amount_msat"`
	Fee         backend.MilliSat    `json:"fee_msat"`
	Time        time.Time           `json:"time"`
	URL         string              `json:"url,omitempty"`
}

func tokenViews(s *clientstore.Store) ([]tokenView, error) {
	toks, err := s.Tokens()
	if err != nil {
		return nil, err
	}
	pend, err := s.Pending()
	if err != nil {
		return nil, err
	}
	var out []tokenView
	for _, t := range toks {
		out = append(out, tokenView{Key: t.Key, State: "paid", PaymentHash: t.PaymentHash, Scheme: t.Scheme, Amount: t.Amount, Fee: t.Fee, Time: t.PaidAt})
	}
	for _, p := range pend {
		state := "pending"
		if p.Unknown {
			state = "unknown"
		}
		out = append(out, tokenView{Key: p.Key, State: state, PaymentHash: p.PaymentHash, Scheme: p.Scheme, Amount: p.Amount, Time: p.Started, URL: p.URL})
	}
	return out, nil
}

func tokensCommand(s *clientstore.Store, pos []string, asJSON bool, w io.Writer) error {
	if len(pos) == 0 {
		return usageError("want tokens list, tokens show KEY|HASH or tokens rm KEY|HASH")
	}
	views, err := tokenViews(s)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "list", "ls":
		if len(pos) != 1 {
			return usageError("tokens list takes no arguments")
		}
		for _, v := range views {
			if asJSON {
				if err := writeJSON(w, v); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(w, "%-8s %-40s %10s  %s  %s\n", v.State, v.Key, v.Amount, v.Time.UTC().Format(time.RFC3339), v.PaymentHash)
		}
		return nil
	case "show":
		if len(pos) != 2 {
			return usageError("tokens show takes one KEY or payment hash")
		}
		for _, v := range views {
			if v.Key == pos[1] || v.PaymentHash.String() == strings.ToLower(pos[1]) {
				if asJSON {
					return writeJSON(w, v)
				}
				fmt.Fprintf(w, "key:          %s\nstate:        %s\npayment hash: %s\nscheme:       %s\namount:       %s\nfee:          %s\ntime:         %s\n",
					v.Key, v.State, v.PaymentHash, v.Scheme, v.Amount, v.Fee, v.Time.UTC().Format(time.RFC3339))
				return nil
			}
		}
		return fmt.Errorf("no token %q", pos[1])
	case "rm":
		if len(pos) != 2 {
			return usageError("tokens rm takes one KEY or payment hash")
		}
		ok, err := s.RemoveToken(pos[1])
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no paid token %q (pending payments stay until resolved)", pos[1])
		}
		return nil
	}
	return usageError(fmt.Sprintf("unknown tokens command %q (want list, show or rm)", pos[0]))
}

// spendSum is one group of spend -by.
type spendSum struct {
	Group  string           `json:"group"`
	By     string           `json:"by"`
	Count  int              `json:"count"`
	Amount backend.MilliSat `json:"amount_msat"`
	Fee    backend.MilliSat `json:"fee_msat"`
}

func spendCommand(s *clientstore.Store, o *options, w io.Writer) error {
	var period l402.Period
	switch o.by {
	case "host":
	case "hour", "day", "month":
		period = l402.Period(o.by)
	default:
		return usageError(fmt.Sprintf("--by %q: want host, hour, day or month", o.by))
	}
	var since time.Time
	if o.since > 0 {
		since = time.Now().Add(-o.since)
	}
	recs, err := s.Spends(since)
	if err != nil {
		return err
	}
	sums := map[string]*spendSum{}
	for _, r := range recs {
		if o.json {
			if err := writeJSON(w, r); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(w, "%s  %-9s %10s fee %-8s %-24s %s  %s\n", r.Time.UTC().Format(time.RFC3339), r.Outcome, r.Amount, r.Fee, r.Host, r.PaymentHash, r.URL)
		}
		if r.Spent() == 0 {
			continue
		}
		group := r.Host
		if period != "" {
			group = period.Window(r.Time)
		}
		g := sums[group]
		if g == nil {
			g = &spendSum{Group: group, By: o.by}
			sums[group] = g
		}
		g.Count++
		g.Amount += r.Amount
		g.Fee += r.Fee
	}
	keys := make([]string, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var total spendSum
	for _, k := range keys {
		g := sums[k]
		total.Count += g.Count
		total.Amount += g.Amount
		total.Fee += g.Fee
		if o.json {
			if err := writeJSON(w, g); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(w, "sum %-6s %-24s %4d payments %12s fee %s\n", o.by, g.Group, g.Count, g.Amount, g.Fee)
	}
	if !o.json {
		fmt.Fprintf(w, "total                           %4d payments %12s fee %s\n", total.Count, total.Amount, total.Fee)
	}
	return nil
}

func budgetCommand(s *clientstore.Store, asJSON bool, w io.Writer) error {
	states, err := s.Remaining("")
	if err != nil {
		return err
	}
	if len(states) == 0 && !asJSON {
		fmt.Fprintln(w, "no budgets set (--budget, L402_BUDGET or budget: in the config file)")
	}
	for _, st := range states {
		if asJSON {
			if err := writeJSON(w, st); err != nil {
				return err
			}
			continue
		}
		resets := "never"
		if st.Resets != nil {
			resets = st.Resets.Format(time.RFC3339)
		}
		scope := st.Spec
		if st.Host != "" && st.Budget.Host == "*" {
			scope += " (" + st.Host + ")"
		}
		fmt.Fprintf(w, "%-32s spent %12s left %12s resets %s\n", scope, st.Spent, st.Left, resets)
	}
	return nil
}
