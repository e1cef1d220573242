package l402

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// ErrOverBudget: a payment would take a budget past its limit. The error
// is a *BudgetError naming the budget and what is left of it; nothing was
// paid.
var ErrOverBudget = errors.New("l402: over budget")

// Ledger keeps account of a Transport's payments beyond the Transport
// itself: it may refuse a payment before it starts (a budget shared by
// several processes) and it records how each payment ended (a durable
// token store, a spend log). Package clientstore has one in a file.
type Ledger interface {
	// Begin is called before a payment starts, once the challenge has
	// passed the Transport's own checks (MaxPrice, invoice and macaroon
	// agreeing). A non-nil error refuses the payment: nothing is paid and
	// the Transport returns the error inside a *ChallengeError. A Ledger
	// that keeps budgets checks them and reserves the amount in one step,
	// so that concurrent payments cannot overspend together.
	Begin(ctx context.Context, p PaymentIntent) (LedgerEntry, error)
}

// LedgerEntry is one payment a Ledger let start. Exactly one of its
// methods is called, once the payment's outcome is known; a process that
// dies first calls neither, and the entry stays pending in the Ledger.
type LedgerEntry interface {
	// Paid records a completed payment and the token it bought; tok is
	// nil for a Payment charge, which buys one request and no token.
	Paid(ctx context.Context, tok *Token, r Receipt) error
	// Failed records a payment that did not complete. err says what
	// became of the money (see backend.Payer): a refusal or a payment that
	// never started, or a fate unknown (backend.ErrPaymentUnknown).
	Failed(ctx context.Context, err error) error
}

// PaymentIntent is a payment a Transport is about to make.
type PaymentIntent struct {
	// Origin is the server to be paid ("https://host:port"); Host is its
	// host[:port] part, lower-cased, as budgets name it.
	Origin string
	Host   string
	// URL is the request that was answered with the challenge, redacted.
	URL string
	// Scheme is the challenge's scheme ("L402", "LSAT", "Payment").
	Scheme string
	// Key is the TokenCache key the token will be stored under; empty
	// for a Payment charge, which buys no token (nor has a Macaroon).
	Key string
	// Macaroon is the challenge's macaroon as the server wrote it, and
	// Invoice its BOLT11 invoice.
	Macaroon string
	Invoice  string
	// PaymentHash and Amount are the invoice's; MaxFee is the routing fee
	// limit the payment runs under (zero: the payer's default).
	PaymentHash backend.PaymentHash
	Amount      backend.MilliSat
	MaxFee      backend.MilliSat
	// Deadline is when the payment is abandoned by the Transport (its
	// PayTimeout from now): a pending entry whose process is gone, or
	// that is past this time, is no longer being paid by anyone.
	Deadline time.Time
}

// TokenFor returns the token the intent buys once preimage is known: a
// way to rebuild it from a record of the intent.
func (p PaymentIntent) TokenFor(preimage backend.Preimage) (*Token, error) {
	return RestoreToken(SchemeL402 + " " + p.Macaroon + ":" + preimage.String())
}

// RestoreToken rebuilds a token from the value Token.Authorization gave
// for it, keeping the macaroon's encoding as its server wrote it. Unlike
// ParseAuthorization it accepts macaroons whose identifier is in another
// server's layout (the token's ID then holds only the payment hash,
// sha256 of the preimage), as a Transport buys them.
func RestoreToken(authorization string) (*Token, error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	if !isL402Scheme(scheme) {
		return nil, fmt.Errorf("%w: stored token is not an L402 authorization", ErrMalformed)
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return nil, fmt.Errorf("%w: stored token is not <macaroon>:<preimage>", ErrMalformed)
	}
	pre, err := backend.ParsePreimage(rest[i+1:])
	if err != nil {
		return nil, fmt.Errorf("%w: stored token's preimage: %v", ErrMalformed, err)
	}
	mac, err := decodeMacaroon(rest[:i])
	if err != nil {
		return nil, err
	}
	id, err := DecodeIdentifier(mac.Id())
	if err != nil {
		id = Identifier{PaymentHash: backend.PaymentHash(sha256.Sum256(pre[:]))}
	}
	return &Token{Macaroon: mac, Preimage: pre, ID: id, encoded: rest[:i]}, nil
}

// TokenExpired reports whether tok is past its validity for good, judged
// by the caveats a client can read (see Transport): such a token can be
// dropped.
func TokenExpired(tok *Token, now time.Time) bool {
	if tok == nil {
		return true
	}
	_, expired := usable(tok.Macaroon, "", "/", now)
	return expired
}

// Period is the window a budget counts payments over. Windows are calendar
// windows in UTC: the current hour, day or month; PeriodLife never ends.
type Period string

// Budget periods.
const (
	PeriodHour  Period = "hour"
	PeriodDay   Period = "day"
	PeriodMonth Period = "month"
	PeriodLife  Period = "life"
)

// Periods lists every period, shortest first.
var Periods = []Period{PeriodHour, PeriodDay, PeriodMonth, PeriodLife}

// Start returns the start of the window of p that holds t (the zero time
// for PeriodLife).
func (p Period) Start(t time.Time) time.Time {
	t = t.UTC()
	switch p {
	case PeriodHour:
		return t.Truncate(time.Hour)
	case PeriodDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case PeriodMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// End returns the end of the window of p that holds t (the zero time for
// PeriodLife, which never ends).
func (p Period) End(t time.Time) time.Time {
	s := p.Start(t)
	switch p {
	case PeriodHour:
		return s.Add(time.Hour)
	case PeriodDay:
		return s.AddDate(0, 0, 1)
	case PeriodMonth:
		return s.AddDate(0, 1, 0)
	}
	return time.Time{}
}

// Window names the window of p that holds t: "2026-12-05T16",
// "2026-12-05", "2026-12" or "life".
func (p Period) Window(t time.Time) string {
	s := p.Start(t)
	switch p {
	case PeriodHour:
		return s.Format("2006-01-02T15")
	case PeriodDay:
		return s.Format("2006-01-02")
	case PeriodMonth:
		return s.Format("2006-01")
	}
	return string(PeriodLife)
}

func (p Period) valid() bool {
	for _, q := range Periods {
		if p == q {
			return true
		}
	}
	return false
}

// Budget limits what may be paid over a period: in total, to each host
// on its own, or to one host.
type Budget struct {
	// Host is "" for a budget over all payments, "*" for one that each
	// host has on its own, or a host[:port] (lower-case, as in URLs) for
	// that host only.
	Host   string
	Period Period
	// Limit is the most the payments counted may add up to, routing fees
	// included.
	Limit backend.MilliSat
}

// ParseBudget reads a budget written as [SCOPE/]PERIOD=SATS, SCOPE being
// "total" (the default), "*" (each host on its own) or a host[:port], and
// SATS a whole number of satoshis: "day=5000", "*/hour=100",
// "api.example.com/month=20000", "total/life=1000000".
func ParseBudget(s string) (Budget, error) {
	spec, amount, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return Budget{}, fmt.Errorf("budget %q is not [SCOPE/]PERIOD=SATS", s)
	}
	scope, period := "", spec
	if i := strings.LastIndexByte(spec, '/'); i >= 0 {
		scope, period = spec[:i], spec[i+1:]
	}
	b := Budget{Period: Period(strings.ToLower(period))}
	if !b.Period.valid() {
		return Budget{}, fmt.Errorf("budget %q: period %q is none of hour, day, month, life", s, period)
	}
	switch scope = strings.ToLower(scope); scope {
	case "", "total":
	case "*":
		b.Host = "*"
	default:
		if strings.ContainsAny(scope, "/ ") {
			return Budget{}, fmt.Errorf("budget %q: %q is not a host", s, scope)
		}
		b.Host = scope
	}
	sats, err := strconv.ParseInt(strings.TrimSpace(amount), 10, 64)
	if err != nil || sats < 0 || sats > int64(^uint64(0)>>1)/1000 {
		return Budget{}, fmt.Errorf("budget %q: %q is not a whole number of satoshis", s, amount)
	}
	b.Limit = backend.Sat(sats)
	return b, nil
}

// String writes b as ParseBudget reads it (a limit with a fraction of a
// satoshi is rounded down).
func (b Budget) String() string {
	return b.Scope() + "/" + string(b.Period) + "=" + strconv.FormatInt(b.Limit.Sats(), 10)
}

// Scope names what the budget counts: "total", "*" or the host.
func (b Budget) Scope() string {
	if b.Host == "" {
		return "total"
	}
	return b.Host
}

// Applies reports whether a payment to host counts against b.
func (b Budget) Applies(host string) bool {
	return b.Host == "" || b.Host == "*" || b.Host == host
}

// Counter names the running sum b is checked against for a payment to
// host at t: one per scope and window, shared by every budget over the
// same payments ("total|day|2026-12-05", "host=api.example.com|day|...").
func (b Budget) Counter(host string, t time.Time) string {
	if b.Host == "" {
		return CounterKey("", b.Period, t)
	}
	return CounterKey(host, b.Period, t)
}

// CounterKey names the running sum of payments to host ("" for all hosts)
// in the window of p that holds t.
func CounterKey(host string, p Period, t time.Time) string {
	scope := "total"
	if host != "" {
		scope = "host=" + host
	}
	return scope + "|" + string(p) + "|" + p.Window(t)
}

// BudgetError refuses a payment that would take a budget past its limit.
type BudgetError struct {
	Budget Budget
	// Host is the host the refused payment was for.
	Host string
	// Asked is what the payment needed (amount, plus its fee limit);
	// Spent is what the budget's window already counts, Left what remains.
	Asked, Spent, Left backend.MilliSat
	// Resets is when the budget's window ends (zero for PeriodLife).
	Resets time.Time
}

func (e *BudgetError) Error() string {
	what := "total"
	if e.Budget.Host != "" {
		what = "host " + e.Host
	}
	s := fmt.Sprintf("l402: over budget: %s %s budget %s: %s asked, %s spent, %s left",
		what, e.Budget.Period, e.Budget.Limit, e.Asked, e.Spent, e.Left)
	if !e.Resets.IsZero() {
		s += ", resets " + e.Resets.UTC().Format(time.RFC3339)
	}
	return s
}

// Is makes errors.Is(err, ErrOverBudget) hold.
func (e *BudgetError) Is(target error) bool { return target == ErrOverBudget }

// CheckBudgets checks a payment of asked to host at t against budgets,
// with spent giving the running sum of a counter (see Budget.Counter). It
// returns the first budget the payment would exceed, as a *BudgetError.
func CheckBudgets(budgets []Budget, host string, t time.Time, asked backend.MilliSat, spent func(counter string) backend.MilliSat) error {
	for _, b := range budgets {
		if !b.Applies(host) {
			continue
		}
		used := spent(b.Counter(host, t))
		if used+asked > b.Limit {
			left := b.Limit - used
			if left < 0 {
				left = 0
			}
			return &BudgetError{Budget: b, Host: host, Asked: asked, Spent: used, Left: left, Resets: b.Period.End(t)}
		}
	}
	return nil
}

// intent describes the payment of q for the Ledger.
func (t *Transport) intent(origin string, u *url.URL, q *offer) PaymentIntent {
	timeout := t.PayTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	mac := q.ch.encoded
	if mac == "" {
		mac = encodeMacaroon(q.ch.Macaroon)
	}
	return PaymentIntent{
		Origin: origin, Host: strings.ToLower(u.Host), URL: u.Redacted(), Scheme: q.ch.Scheme,
		Key:      CacheKey(origin, &Token{Macaroon: q.ch.Macaroon}),
		Macaroon: mac, Invoice: q.ch.Invoice,
		PaymentHash: q.hash, Amount: q.amount, MaxFee: t.MaxFee,
		Deadline: t.now().Add(timeout),
	}
}

// record tells the Ledger how a payment ended. A Ledger that cannot
// record it is logged, not returned: the payment's outcome stands.
func (t *Transport) record(ctx context.Context, e LedgerEntry, tok *Token, r *Receipt, err error) {
	ctx = context.WithoutCancel(ctx)
	var lerr error
	if err == nil {
		lerr = e.Paid(ctx, tok, *r)
	} else {
		lerr = e.Failed(ctx, err)
	}
	if lerr != nil {
		t.log.ErrorContext(ctx, "l402: ledger did not record a payment", "err", lerr, "paid", err == nil)
	}
}
