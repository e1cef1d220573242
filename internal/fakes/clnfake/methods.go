package clnfake

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

// Error codes as lightningd (common/jsonrpc_errors.h) and cln_plugin use them.
const (
	codeMethodNotFound    = -32601
	codeInvalidParams     = -32602
	codePluginError       = -32700
	codeLightningd        = -1
	codeRhashAlreadyUsed  = 201
	codeDestPermFail      = 203
	codeInvoiceExpired    = 207
	codeStoppedRetrying   = 210
	codeLabelExists       = 900
	codePreimageExists    = 901
	codeExpiredDuringWait = 903
)

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func errorf(code int, format string, a ...any) *rpcError {
	return &rpcError{Code: code, Message: fmt.Sprintf(format, a...)}
}

// record is what lightningd keeps about an invoice beyond what the memory
// node knows: its label and indexes.
type record struct {
	label        string
	description  string // as given, also when only its hash is in the invoice
	hash         backend.PaymentHash
	createdIndex uint64
	payIndex     uint64 // set when the invoice is first seen paid
	updatedIndex uint64
}

// ledger is the fake's own invoice table.
type ledger struct {
	mu           sync.Mutex
	byLabel      map[string]*record
	byHash       map[backend.PaymentHash]*record
	holds        map[backend.PaymentHash]int64      // hold invoice id by hash
	signed       map[string]backend.PaymentHash     // signinvoice output not yet injected
	sent         map[backend.PaymentHash]*payRecord // this node's payments, as listpays and listsendpays report them
	sentIndex    uint64
	fault        *PayFault // what the next xpay or pay answers instead (FailNextPay)
	calls        map[string]int
	createdIndex uint64
	payIndex     uint64
	updatedIndex uint64
}

func newLedger() *ledger {
	return &ledger{
		byLabel: map[string]*record{},
		byHash:  map[backend.PaymentHash]*record{},
		holds:   map[backend.PaymentHash]int64{},
		signed:  map[string]backend.PaymentHash{},
		sent:    map[backend.PaymentHash]*payRecord{},
		calls:   map[string]int{},
	}
}

// methodUsage is help's text for each method, as lightningd prints it.
var methodUsage = map[string]string{
	"getinfo":       "getinfo",
	"help":          "help [command]",
	"invoice":       "invoice amount_msat label description [expiry] [fallbacks] [preimage] [exposeprivatechannels] [cltv] [deschashonly]",
	"listinvoices":  "listinvoices [label] [invstring] [payment_hash] [offer_id] [index] [start] [limit]",
	"waitinvoice":   "waitinvoice label",
	"listpays":      "listpays [bolt11] [payment_hash] [status] [index] [start] [limit]",
	"listsendpays":  "listsendpays [bolt11] [payment_hash] [status] [index] [start] [limit]",
	"signinvoice":   "signinvoice invstring",
	"createinvoice": "createinvoice invstring label preimage",
}

// holdUsage is the hold plugin's methods (BoltzExchange/hold src/main.rs).
var holdUsage = map[string]string{
	"holdinvoice":       "holdinvoice payment_hash amount",
	"injectholdinvoice": "injectholdinvoice invoice",
	"listholdinvoices":  "listholdinvoices [payment_hash] [bolt11]",
	"settleholdinvoice": "settleholdinvoice preimage",
	"cancelholdinvoice": "cancelholdinvoice payment_hash",
}

func (f *Fake) usage(method string) (string, bool) {
	if u, ok := methodUsage[method]; ok {
		return u, true
	}
	if u, ok := f.payUsage()[method]; ok {
		return u, true
	}
	if u, ok := f.offerUsage()[method]; ok {
		return u, true
	}
	if f.cfg.HoldPlugin {
		u, ok := holdUsage[method]
		return u, ok
	}
	return "", false
}

func (f *Fake) dispatch(ctx context.Context, method string, params json.RawMessage) (any, *rpcError) {
	f.log.Debug("clnfake: call", "method", method, "params", string(params))
	f.state.mu.Lock()
	f.state.calls[method]++
	f.state.mu.Unlock()
	if _, ok := f.usage(method); !ok {
		return nil, errorf(codeMethodNotFound, "Unknown command '%s'", method)
	}
	switch method {
	case "getinfo":
		return f.getinfo(ctx, params)
	case "help":
		return f.help(params)
	case "invoice":
		return f.invoice(ctx, params)
	case "listinvoices":
		return f.listinvoices(ctx, params)
	case "waitinvoice":
		return f.waitinvoice(ctx, params)
	case "pay":
		return f.pay(ctx, params)
	case "xpay":
		return f.xpay(ctx, params)
	case "listpays":
		return f.listpays(params)
	case "listsendpays":
		return f.listsendpays(params)
	case "offer":
		return f.offer(ctx, params)
	case "listoffers":
		return f.listoffers(ctx, params)
	case "disableoffer":
		return f.disableoffer(ctx, params)
	case "fetchinvoice":
		return f.fetchinvoice(ctx, params)
	case "signinvoice":
		return f.signinvoice(ctx, params)
	case "createinvoice":
		return f.createinvoice(ctx, params)
	case "holdinvoice":
		return f.holdinvoice(ctx, params)
	case "injectholdinvoice":
		return f.injectholdinvoice(ctx, params)
	case "listholdinvoices":
		return f.listholdinvoices(ctx, params)
	case "settleholdinvoice":
		return f.settleholdinvoice(ctx, params)
	case "cancelholdinvoice":
		return f.cancelholdinvoice(ctx, params)
	}
	return nil, errorf(codeMethodNotFound, "Unknown command '%s'", method)
}

// bind reads params given by name (an object) or by position (an array) as
// lightningd does, refusing unknown names and missing required ones.
func bind(params json.RawMessage, names []string, required int) (map[string]json.RawMessage, *rpcError) {
	out := map[string]json.RawMessage{}
	p := strings.TrimSpace(string(params))
	switch {
	case p == "" || p == "null":
	case strings.HasPrefix(p, "["):
		var arr []json.RawMessage
		if err := json.Unmarshal(params, &arr); err != nil {
			return nil, errorf(codeInvalidParams, "Expected array or object for params")
		}
		if len(arr) > len(names) {
			return nil, errorf(codeInvalidParams, "too many parameters: got %d, expected %d", len(arr), len(names))
		}
		for i, v := range arr {
			if string(v) != "null" {
				out[names[i]] = v
			}
		}
	case strings.HasPrefix(p, "{"):
		if err := json.Unmarshal(params, &out); err != nil {
			return nil, errorf(codeInvalidParams, "Expected array or object for params")
		}
		for k := range out {
			known := false
			for _, n := range names {
				known = known || n == k
			}
			if !known {
				return nil, errorf(codeInvalidParams, "unknown parameter: %s, this may be caused by a failure to autodetect key=value-style parameters. Please try using the -k flag and explicit key=value pairs of parameters.", k)
			}
		}
	default:
		return nil, errorf(codeInvalidParams, "Expected array or object for params")
	}
	for _, n := range names[:required] {
		if _, ok := out[n]; !ok {
			return nil, errorf(codeInvalidParams, "missing required parameter: %s", n)
		}
	}
	return out, nil
}

func paramErr(name string, v json.RawMessage, what string) *rpcError {
	return errorf(codeInvalidParams, "'%s' should be %s, not '%s'", name, what, strings.Trim(string(v), `"`))
}

func str(p map[string]json.RawMessage, name string) (string, *rpcError) {
	v, ok := p[name]
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", paramErr(name, v, "a string")
	}
	return s, nil
}

// escapedString reads a string as lightningd's param_escaped_string does:
// the only escapes it undoes are \" \\ \/ \b \f \n \r \t, and a \u escape
// is refused.
func escapedString(p map[string]json.RawMessage, name string) (string, *rpcError) {
	v := p[name]
	bad := len(v) < 2 || v[0] != '"'
	for i := 1; !bad && i < len(v)-1; i++ {
		if v[i] == '\\' {
			i++
			bad = v[i] == 'u'
		}
	}
	if bad {
		return "", errorf(codeInvalidParams, "%s: should be a string (without \\u): invalid token (see logs for details)", name)
	}
	return str(p, name)
}

// boolean reads an optional JSON true or false.
func boolean(p map[string]json.RawMessage, name string) (bool, *rpcError) {
	v, ok := p[name]
	if !ok {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		return false, paramErr(name, v, "a boolean")
	}
	return b, nil
}

// label reads a label, which may be a string or a number (kept as written).
func label(p map[string]json.RawMessage, name string) (string, *rpcError) {
	v := p[name]
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), nil
	}
	return "", paramErr(name, v, "a string or a number")
}

func u64(p map[string]json.RawMessage, name string) (uint64, bool, *rpcError) {
	v, ok := p[name]
	if !ok {
		return 0, false, nil
	}
	var n uint64
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, false, paramErr(name, v, "an unsigned 64 bit integer")
	}
	return n, true, nil
}

// msat reads an amount as lightningd's param_msat does: an integer, or a
// string "N", "Nmsat" or "Nsat". any reports the string "any" (allowed
// only where allowAny).
func msat(p map[string]json.RawMessage, name string, allowAny bool) (amount int64, any, present bool, rerr *rpcError) {
	v, ok := p[name]
	if !ok {
		return 0, false, false, nil
	}
	var n int64
	if json.Unmarshal(v, &n) == nil && n >= 0 {
		return n, false, true, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s == "any" && allowAny {
			return 0, true, true, nil
		}
		mult := int64(1)
		switch {
		case strings.HasSuffix(s, "msat"):
			s = strings.TrimSuffix(s, "msat")
		case strings.HasSuffix(s, "sat"):
			s, mult = strings.TrimSuffix(s, "sat"), 1000
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			return n * mult, false, true, nil
		}
	}
	what := "a millisatoshi amount"
	if allowAny {
		what = "a positive msat or 'any'"
	}
	return 0, false, false, paramErr(name, v, what)
}

func hash32(p map[string]json.RawMessage, name string) (backend.PaymentHash, bool, *rpcError) {
	s, rerr := str(p, name)
	if rerr != nil || s == "" {
		return backend.PaymentHash{}, false, rerr
	}
	h, err := backend.ParsePaymentHash(s)
	if err != nil {
		return h, false, paramErr(name, p[name], "a 32 byte hex value")
	}
	return h, true, nil
}

// nodeError turns a memory node failure into lightningd's catch-all error.
func nodeError(err error) *rpcError {
	return errorf(codeLightningd, "%v", err)
}

func (f *Fake) getinfo(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	if _, rerr := bind(params, nil, 0); rerr != nil {
		return nil, rerr
	}
	info, err := f.b.Info(ctx)
	if err != nil {
		return nil, nodeError(err)
	}
	network := info.Network
	if network == "mainnet" {
		network = "bitcoin" // lightningd's name for mainnet
	}
	return map[string]any{
		"id":                    info.NodeID,
		"alias":                 info.Alias,
		"color":                 info.NodeID[2:8],
		"num_peers":             0,
		"num_pending_channels":  0,
		"num_active_channels":   0,
		"num_inactive_channels": 0,
		"address":               []any{},
		"binding":               []any{},
		"version":               f.version,
		"blockheight":           info.BlockHeight,
		"network":               network,
		"fees_collected_msat":   0,
		"lightning-dir":         filepath.Dir(f.cfg.SocketPath),
		"our_features": map[string]string{
			"init": "08a0880a8a59a1", "node": "88a0880a8a59a1", "channel": "", "invoice": "02000002024100",
		},
	}, nil
}

func (f *Fake) help(params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"command"}, 0)
	if rerr != nil {
		return nil, rerr
	}
	cmd, rerr := str(p, "command")
	if rerr != nil {
		return nil, rerr
	}
	type entry struct {
		Command string `json:"command"`
	}
	var out []entry
	if cmd != "" {
		u, ok := f.usage(cmd)
		if !ok {
			return nil, errorf(codeMethodNotFound, "Unknown command %s", cmd)
		}
		out = append(out, entry{u})
	} else {
		for _, u := range methodUsage {
			out = append(out, entry{u})
		}
		for _, u := range f.payUsage() {
			out = append(out, entry{u})
		}
		for _, u := range f.offerUsage() {
			out = append(out, entry{u})
		}
		if f.cfg.HoldPlugin {
			for _, u := range holdUsage {
				out = append(out, entry{u})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Command < out[j].Command })
	}
	return map[string]any{"help": out, "format-hint": "simple"}, nil
}

func (f *Fake) invoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"amount_msat", "label", "description", "expiry", "fallbacks", "preimage", "exposeprivatechannels", "cltv", "deschashonly"}, 3)
	if rerr != nil {
		return nil, rerr
	}
	amount, _, _, rerr := msat(p, "amount_msat", true)
	if rerr != nil {
		return nil, rerr
	}
	lbl, rerr := label(p, "label")
	if rerr != nil {
		return nil, rerr
	}
	desc, rerr := escapedString(p, "description")
	if rerr != nil {
		return nil, rerr
	}
	expiry, hasExpiry, rerr := u64(p, "expiry")
	if rerr != nil {
		return nil, rerr
	}
	if !hasExpiry {
		expiry = 604800 // lightningd's default: one week
	}
	hashOnly, rerr := boolean(p, "deschashonly")
	if rerr != nil {
		return nil, rerr
	}
	if len(lbl) > 128 {
		return nil, errorf(codeInvalidParams, "Label '%s' over 128 bytes", lbl)
	}
	if len(desc) > 639 && !hashOnly {
		return nil, errorf(codeInvalidParams, "Description greater than 639 bytes invalid (description length %d)", len(desc))
	}
	req := backend.InvoiceRequest{
		Amount: backend.MilliSat(amount),
		Memo:   desc,
		Expiry: time.Duration(expiry) * time.Second,
	}
	if hashOnly {
		// The invoice commits to sha256(description) (field h); the
		// text is what listinvoices shows.
		req.Memo, req.HashedDescription = "", desc
	}
	if _, ok := p["preimage"]; ok {
		s, rerr := str(p, "preimage")
		if rerr != nil {
			return nil, rerr
		}
		pre, err := backend.ParsePreimage(s)
		if err != nil {
			return nil, paramErr("preimage", p["preimage"], "a 32 byte hex value")
		}
		req.Preimage = &pre
	}

	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	if _, dup := f.state.byLabel[lbl]; dup {
		return nil, errorf(codeLabelExists, "Duplicate label '%s'", lbl)
	}
	if req.Preimage != nil {
		if _, dup := f.state.byHash[req.Preimage.Hash()]; dup {
			return nil, errorf(codePreimageExists, "preimage already used")
		}
	}
	inv, err := f.b.CreateInvoice(ctx, req)
	switch {
	case errors.Is(err, backend.ErrAlreadyExists):
		return nil, errorf(codePreimageExists, "preimage already used")
	case errors.Is(err, backend.ErrInvalid):
		return nil, errorf(codeInvalidParams, "%v", err)
	case err != nil:
		return nil, nodeError(err)
	}
	f.state.createdIndex++
	r := &record{label: lbl, description: desc, hash: inv.PaymentHash, createdIndex: f.state.createdIndex}
	f.state.byLabel[lbl] = r
	f.state.byHash[inv.PaymentHash] = r
	secret, err := paymentSecret(inv.PaymentRequest)
	if err != nil {
		return nil, nodeError(err)
	}
	return map[string]any{
		"payment_hash":   inv.PaymentHash.String(),
		"expires_at":     inv.ExpiresAt.Unix(),
		"bolt11":         inv.PaymentRequest,
		"payment_secret": secret,
		"created_index":  r.createdIndex,
	}, nil
}

// decodeInvstring reads an invoice string parameter as lightningd's
// to_canonical_invstr does: a "lightning:" or "LIGHTNING:" scheme is
// dropped and case ignored, but nothing else, surrounding whitespace
// included, is forgiven.
func decodeInvstring(s string) (*backend.DecodedInvoice, error) {
	for _, scheme := range []string{"lightning:", "LIGHTNING:"} {
		if rest, ok := strings.CutPrefix(s, scheme); ok {
			s = rest
			break
		}
	}
	if _, err := bolt11.Decode(s); err != nil {
		return nil, err
	}
	return backend.DecodeInvoice(s)
}

// paymentSecret reads the payment secret (BOLT11 field s) from an invoice.
func paymentSecret(s string) (string, error) {
	inv, err := bolt11.Decode(s)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(inv.PaymentSecret[:]), nil
}

// fields renders an invoice as listinvoices and waitinvoice do. The
// ledger's lock must be held.
func (f *Fake) fields(r *record, inv *backend.Invoice) map[string]any {
	out := map[string]any{
		"label":         r.label,
		"bolt11":        inv.PaymentRequest,
		"payment_hash":  inv.PaymentHash.String(),
		"description":   r.description,
		"expires_at":    inv.ExpiresAt.Unix(),
		"created_index": r.createdIndex,
	}
	if inv.Amount > 0 {
		out["amount_msat"] = int64(inv.Amount)
	}
	switch {
	case inv.State == backend.StateSettled:
		if r.payIndex == 0 {
			f.state.payIndex++
			f.state.updatedIndex++
			r.payIndex, r.updatedIndex = f.state.payIndex, f.state.updatedIndex
		}
		out["status"] = "paid"
		out["pay_index"] = r.payIndex
		out["amount_received_msat"] = int64(inv.AmountReceived)
		out["paid_at"] = inv.SettledAt.Unix()
		if inv.Preimage != nil {
			out["payment_preimage"] = inv.Preimage.String()
		}
	case inv.Expired(time.Now()) || inv.State == backend.StateCanceled:
		out["status"] = "expired"
	default:
		out["status"] = "unpaid"
	}
	if r.updatedIndex != 0 {
		out["updated_index"] = r.updatedIndex
	}
	return out
}

func (f *Fake) listinvoices(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"label", "invstring", "payment_hash", "offer_id", "index", "start", "limit"}, 0)
	if rerr != nil {
		return nil, rerr
	}
	if p["offer_id"] != nil {
		id, _, rerr := hash32(p, "offer_id")
		if rerr != nil {
			return nil, rerr
		}
		invs, rerr := f.offerInvoices(id.String())
		if rerr != nil {
			return nil, rerr
		}
		return map[string]any{"invoices": invs}, nil
	}
	var want []*record
	f.state.mu.Lock()
	switch {
	case p["label"] != nil:
		lbl, rerr := label(p, "label")
		if rerr != nil {
			f.state.mu.Unlock()
			return nil, rerr
		}
		if r, ok := f.state.byLabel[lbl]; ok {
			want = append(want, r)
		}
	case p["payment_hash"] != nil:
		h, _, rerr := hash32(p, "payment_hash")
		if rerr != nil {
			f.state.mu.Unlock()
			return nil, rerr
		}
		if r, ok := f.state.byHash[h]; ok {
			want = append(want, r)
		} else if e, rerr := f.offerInvoiceByHash(ctx, h); rerr != nil || e != nil {
			f.state.mu.Unlock()
			if rerr != nil {
				return nil, rerr
			}
			return map[string]any{"invoices": []map[string]any{e}}, nil
		}
	case p["invstring"] != nil:
		s, rerr := str(p, "invstring")
		if rerr != nil {
			f.state.mu.Unlock()
			return nil, rerr
		}
		d, err := decodeInvstring(s)
		if err != nil {
			f.state.mu.Unlock()
			return nil, paramErr("invstring", p["invstring"], "a bolt11 or bolt12 string")
		}
		if r, ok := f.state.byHash[d.PaymentHash]; ok {
			want = append(want, r)
		}
	default:
		for _, r := range f.state.byLabel {
			want = append(want, r)
		}
		sort.Slice(want, func(i, j int) bool { return want[i].createdIndex < want[j].createdIndex })
	}
	f.state.mu.Unlock()

	out := []map[string]any{}
	for _, r := range want {
		inv, err := f.b.LookupInvoice(ctx, r.hash)
		if err != nil {
			return nil, nodeError(err)
		}
		f.state.mu.Lock()
		out = append(out, f.fields(r, inv))
		f.state.mu.Unlock()
	}
	return map[string]any{"invoices": out}, nil
}

func (f *Fake) waitinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"label"}, 1)
	if rerr != nil {
		return nil, rerr
	}
	lbl, rerr := label(p, "label")
	if rerr != nil {
		return nil, rerr
	}
	f.state.mu.Lock()
	r, ok := f.state.byLabel[lbl]
	f.state.mu.Unlock()
	if !ok {
		return nil, errorf(codeLightningd, "Label not found")
	}
	f.waiting.Add(1)
	inv, err := f.b.WaitInvoice(ctx, r.hash)
	f.waiting.Add(-1)
	if err != nil {
		return nil, nodeError(err)
	}
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	fl := f.fields(r, inv)
	if fl["status"] == "paid" {
		return fl, nil
	}
	// lightningd's tell_waiter: the error's data is the invoice.
	return nil, &rpcError{Code: codeExpiredDuringWait, Message: "invoice expired during wait", Data: fl}
}

// The hold plugin's methods. cln_plugin reports every error of a plugin
// method with code -32700 and the error chain as the message.

// naiveTime writes t as the plugin does: chrono's NaiveDateTime in UTC.
func naiveTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

func (f *Fake) holdinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"payment_hash", "amount"}, 2)
	if rerr != nil {
		return nil, errorf(codePluginError, "%s", rerr.Message)
	}
	var hashHex string
	var amount uint64
	if json.Unmarshal(p["payment_hash"], &hashHex) != nil || json.Unmarshal(p["amount"], &amount) != nil {
		return nil, errorf(codePluginError, "could not parse request")
	}
	raw, err := hex.DecodeString(hashHex)
	if err != nil {
		return nil, errorf(codePluginError, "%v", err)
	}
	var hash backend.PaymentHash
	if len(raw) != len(hash) {
		return nil, errorf(codePluginError, "invalid payment hash length %d", len(raw))
	}
	copy(hash[:], raw)
	inv, err := f.b.CreateHoldInvoice(ctx, hash, backend.InvoiceRequest{
		Amount: backend.MilliSat(amount),
		Expiry: time.Hour, // lightning-invoice's DEFAULT_EXPIRY_TIME
	})
	switch {
	case errors.Is(err, backend.ErrAlreadyExists):
		return nil, errorf(codePluginError, "UNIQUE constraint failed: invoices.payment_hash")
	case err != nil:
		return nil, errorf(codePluginError, "%v", err)
	}
	f.state.mu.Lock()
	f.state.holds[hash] = int64(len(f.state.holds) + 1)
	f.state.mu.Unlock()
	return map[string]any{"bolt11": inv.PaymentRequest}, nil
}

func (f *Fake) holdEntry(id int64, inv *backend.Invoice) map[string]any {
	state := map[backend.State]string{
		backend.StateOpen: "unpaid", backend.StateHeld: "accepted",
		backend.StateSettled: "paid", backend.StateCanceled: "cancelled",
	}[inv.State]
	out := map[string]any{
		"id":           id,
		"payment_hash": inv.PaymentHash.String(),
		"invoice":      inv.PaymentRequest,
		"state":        state,
		"created_at":   naiveTime(inv.CreatedAt),
		"htlcs":        []any{},
	}
	if inv.Preimage != nil {
		out["preimage"] = inv.Preimage.String()
	}
	if inv.State == backend.StateSettled {
		out["settled_at"] = naiveTime(inv.SettledAt)
	}
	if inv.AmountReceived > 0 && (inv.State == backend.StateHeld || inv.State == backend.StateSettled) {
		htlcState := "accepted"
		if inv.State == backend.StateSettled {
			htlcState = "paid"
		}
		out["htlcs"] = []any{map[string]any{
			"id": id, "invoice_id": id, "state": htlcState, "scid": "103x1x0", "channel_id": 1,
			"msat": int64(inv.AmountReceived), "cltv_expiry": 200, "created_at": naiveTime(inv.CreatedAt),
		}}
	}
	return out
}

func (f *Fake) listholdinvoices(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"payment_hash", "invoice"}, 0)
	if rerr != nil {
		return nil, errorf(codePluginError, "%s", rerr.Message)
	}
	_, hasHash := p["payment_hash"]
	_, hasInv := p["invoice"]
	if hasHash && hasInv {
		return nil, errorf(codePluginError, "too many parameters")
	}
	type item struct {
		id   int64
		hash backend.PaymentHash
	}
	var want []item
	f.state.mu.Lock()
	switch {
	case hasHash || hasInv:
		var hash backend.PaymentHash
		var s string
		if hasHash {
			if json.Unmarshal(p["payment_hash"], &s) != nil {
				f.state.mu.Unlock()
				return nil, errorf(codePluginError, "could not parse request")
			}
			raw, err := hex.DecodeString(s)
			if err != nil || len(raw) != 32 {
				f.state.mu.Unlock()
				return nil, errorf(codePluginError, "invalid payment hash")
			}
			copy(hash[:], raw)
		} else {
			if json.Unmarshal(p["invoice"], &s) != nil {
				f.state.mu.Unlock()
				return nil, errorf(codePluginError, "could not parse request")
			}
			d, err := backend.DecodeInvoice(s)
			if err != nil {
				f.state.mu.Unlock()
				return nil, errorf(codePluginError, "%v", err)
			}
			hash = d.PaymentHash
		}
		if id, ok := f.state.holds[hash]; ok {
			want = append(want, item{id, hash})
		}
	default:
		for h, id := range f.state.holds {
			want = append(want, item{id, h})
		}
		sort.Slice(want, func(i, j int) bool { return want[i].id < want[j].id })
	}
	f.state.mu.Unlock()
	out := []map[string]any{}
	for _, it := range want {
		inv, err := f.b.LookupInvoice(ctx, it.hash)
		if err != nil {
			return nil, errorf(codePluginError, "%v", err)
		}
		out = append(out, f.holdEntry(it.id, inv))
	}
	return map[string]any{"holdinvoices": out}, nil
}

func (f *Fake) isHold(hash backend.PaymentHash) bool {
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	_, ok := f.state.holds[hash]
	return ok
}

func (f *Fake) settleholdinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"preimage"}, 1)
	if rerr != nil {
		return nil, errorf(codePluginError, "too few parameters")
	}
	var s string
	if json.Unmarshal(p["preimage"], &s) != nil {
		return nil, errorf(codePluginError, "could not parse request")
	}
	pre, err := backend.ParsePreimage(s)
	if err != nil {
		return nil, errorf(codePluginError, "%v", err)
	}
	if !f.isHold(pre.Hash()) {
		return nil, errorf(codePluginError, "invoice not found")
	}
	err = f.b.SettleInvoice(ctx, pre)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return nil, errorf(codePluginError, "invoice not found")
	case errors.Is(err, backend.ErrInvalid):
		return nil, errorf(codePluginError, "no HTLCs to settle")
	case err != nil:
		return nil, errorf(codePluginError, "%v", err)
	}
	return map[string]any{}, nil
}

func (f *Fake) cancelholdinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"payment_hash"}, 1)
	if rerr != nil {
		return nil, errorf(codePluginError, "too few parameters")
	}
	var s string
	if json.Unmarshal(p["payment_hash"], &s) != nil {
		return nil, errorf(codePluginError, "could not parse request")
	}
	hash, err := backend.ParsePaymentHash(s)
	if err != nil {
		return nil, errorf(codePluginError, "%v", err)
	}
	if !f.isHold(hash) {
		return nil, errorf(codePluginError, "invoice not found")
	}
	err = f.b.CancelInvoice(ctx, hash)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return nil, errorf(codePluginError, "invoice not found")
	case errors.Is(err, backend.ErrInvalid):
		return nil, errorf(codePluginError, "state paid is final")
	case err != nil:
		return nil, errorf(codePluginError, "%v", err)
	}
	return map[string]any{}, nil
}

// signinvoice signs an invoice as the node. The memory node signs only
// invoices it keeps, so here (unlike lightningd, which keeps nothing) the
// invoice is registered with the memory node as a hold invoice with the
// same hash, amount, description (or hash) and expiry, and the memory
// node's BOLT11 comes back: same fields, the node's own timestamp and
// payment secret. (A real node would refuse payments to it until
// injectholdinvoice hands it to the plugin; the memory node cannot tell, so
// tests must not rely on that refusal.) A hash the node already has gives back that invoice, so the
// plugin's duplicate check (at injection) is where a duplicate fails, as
// with the real plugin. The fake checks the signature it is given, which
// lightningd ignores.
func (f *Fake) signinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"invstring"}, 1)
	if rerr != nil {
		return nil, rerr
	}
	s, rerr := str(p, "invstring")
	if rerr != nil {
		return nil, rerr
	}
	d, err := decodeInvstring(s)
	if err != nil {
		return nil, errorf(codeInvalidParams, "Unparsable invoice '%s': %v", s, err)
	}
	if existing, err := f.b.LookupInvoice(ctx, d.PaymentHash); err == nil {
		return map[string]any{"bolt11": existing.PaymentRequest}, nil
	}
	inv, err := f.b.CreateHoldInvoice(ctx, d.PaymentHash, backend.InvoiceRequest{
		Amount:          d.Amount,
		Memo:            d.Memo,
		DescriptionHash: d.DescriptionHash,
		Expiry:          d.Expiry,
	})
	if err != nil {
		return nil, nodeError(err)
	}
	f.state.mu.Lock()
	f.state.signed[inv.PaymentRequest] = inv.PaymentHash
	f.state.mu.Unlock()
	return map[string]any{"bolt11": inv.PaymentRequest}, nil
}

// injectholdinvoice is the plugin's: it takes an invoice the node signed.
func (f *Fake) injectholdinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"invoice", "min_cltv"}, 1)
	if rerr != nil {
		return nil, errorf(codePluginError, "%s", rerr.Message)
	}
	var s string
	if json.Unmarshal(p["invoice"], &s) != nil {
		return nil, errorf(codePluginError, "could not parse request")
	}
	d, err := backend.DecodeInvoice(s)
	if err != nil {
		return nil, errorf(codePluginError, "%v", err)
	}
	if d.Payee != f.node.NodeID() {
		return nil, errorf(codePluginError, "invoice is not related to us")
	}
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	if _, dup := f.state.holds[d.PaymentHash]; dup {
		return nil, errorf(codePluginError, "UNIQUE constraint failed: invoices.payment_hash")
	}
	if _, plain := f.state.byHash[d.PaymentHash]; plain {
		return nil, errorf(codePluginError, "UNIQUE constraint failed: invoices.payment_hash")
	}
	if f.state.signed[s] != d.PaymentHash {
		return nil, errorf(codePluginError, "clnfake: invoice was not signed by this node's signinvoice")
	}
	delete(f.state.signed, s)
	f.state.holds[d.PaymentHash] = int64(len(f.state.holds) + 1)
	return map[string]any{}, nil
}

// createinvoice stores an invoice the caller encoded, with its preimage,
// refusing what lightningd refuses: an invoice for another network, one
// without a description (d; a description hash alone is "Missing
// description in invoice"), one whose expiry is zero, a preimage that does
// not hash to its payment hash. The memory node makes its own BOLT11 with
// the same hash, amount, description and expiry; that string is returned
// where lightningd would return the caller's invoice with its signature.
func (f *Fake) createinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"invstring", "label", "preimage"}, 3)
	if rerr != nil {
		return nil, rerr
	}
	s, rerr := str(p, "invstring")
	if rerr != nil {
		return nil, rerr
	}
	lbl, rerr := label(p, "label")
	if rerr != nil {
		return nil, rerr
	}
	ps, rerr := str(p, "preimage")
	if rerr != nil {
		return nil, rerr
	}
	pre, err := backend.ParsePreimage(ps)
	if err != nil {
		return nil, paramErr("preimage", p["preimage"], "a 32 byte hex value")
	}
	d, err := decodeInvstring(s)
	if err == nil {
		var info *backend.NodeInfo
		if info, err = f.node.Info(ctx); err == nil && d.Network != info.Network {
			err = fmt.Errorf("invoice is for %s, the node is on %s", d.Network, info.Network)
		}
	}
	if err != nil {
		return nil, errorf(codeInvalidParams, "Unparsable invoice '%s': %v", s, err)
	}
	// lightningd stores the description it finds in the invoice (field
	// d); one with only a description hash (h) has none to store.
	switch {
	case d.DescriptionHash != nil:
		return nil, errorf(codeInvalidParams, "Missing description in invoice")
	case d.Expiry == 0:
		return nil, errorf(codeInvalidParams, "Missing expiry in invoice")
	case d.PaymentHash != pre.Hash():
		return nil, errorf(codeInvalidParams, "Incorrect preimage")
	}
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	if _, dup := f.state.byLabel[lbl]; dup {
		return nil, errorf(codeLabelExists, "Duplicate label '%s'", lbl)
	}
	if _, dup := f.state.byHash[pre.Hash()]; dup {
		return nil, errorf(codePreimageExists, "preimage already used")
	}
	inv, err := f.b.CreateInvoice(ctx, backend.InvoiceRequest{
		Amount:   d.Amount,
		Memo:     d.Memo,
		Expiry:   d.Expiry,
		Preimage: &pre,
	})
	switch {
	case errors.Is(err, backend.ErrAlreadyExists):
		return nil, errorf(codePreimageExists, "preimage already used")
	case err != nil:
		return nil, nodeError(err)
	}
	f.state.createdIndex++
	r := &record{label: lbl, description: d.Memo, hash: inv.PaymentHash, createdIndex: f.state.createdIndex}
	f.state.byLabel[lbl] = r
	f.state.byHash[inv.PaymentHash] = r
	return f.fields(r, inv), nil
}
