// Package phoenixdfake is a wire-level stand-in for phoenixd's HTTP API,
// backed by a memory.Node, for testing the phoenixd adapter (and anything
// else speaking phoenixd's protocol) over a real socket without a phoenixd.
//
// It follows phoenixd 0.8.0 (source commit
// de6f8ae81c01534fa9ffdf0934385fd4a5ad9f9f: Api.kt, json/JsonSerializers.kt)
// and its API reference. It listens on 127.0.0.1 and answers:
//
//	POST /createinvoice            form: description | descriptionHash (hex32), amountSat?, expirySeconds?,
//	                               externalId?, webhookUrl?
//	                               -> {"amountSat"?, "paymentHash", "serialized"}
//	GET  /payments/incoming/{hash} -> {"type":"incoming_payment", "subType":"lightning", "paymentHash",
//	                               "preimage", "externalId"?, "description"?, "invoice", "isPaid",
//	                               "isExpired", "requestedSat"?, "receivedSat", "fees", "expiresAt",
//	                               "completedAt"?, "createdAt"}
//	POST /payinvoice               form: invoice, amountSat? (full-access password only)
//	POST /payoffer                 form: offer, amountSat?, message? (full-access password only)
//	GET  /getoffer                 the node's default offer (any amount)
//	                               -> {"recipientAmountSat", "routingFeeSat", "paymentId", "paymentHash",
//	                               "paymentPreimage"} or, still HTTP 200, {"paymentHash", "reason"}
//	GET  /getinfo                  -> {"nodeId", "channels": [], "chain", "blockHeight", "version"}
//	GET  /websocket                text frames {"type":"payment_received", "timestamp", "amountSat",
//	                               "paymentHash", "externalId"?}
//
// Units as phoenixd's: every *Sat field is whole satoshis, truncated from the
// memory node's millisatoshis as phoenixd truncates; "fees" is millisatoshis
// (always 0 here); times are Unix milliseconds. Fields phoenixd leaves null are
// left out (its API JSON has explicitNulls = false), except in webhook bodies,
// which phoenixd serialises with nulls. JSON is indented, as phoenixd's is.
//
// Errors are plain text, as phoenixd's StatusPages make them: 401 "Invalid
// authentication (use basic auth with the http password set in phoenix.conf)";
// 404 "Not found" for an unknown payment hash and "Unknown endpoint (check api
// doc)" for an unknown route; 405 "Invalid http method (use the correct
// GET/POST)"; 400 "Request parameter X is missing", "Request parameter X
// couldn't be parsed/converted to T", "Must provide either a description or
// descriptionHash", "Request parameter description is too long (max 128
// characters)"; 500 "amount is not valid" for an amountSat of zero or less
// (lightning-kmp's requirement); 500 with the memory node's message when it
// is unavailable. Invoices are read as lightning-kmp's Bolt11Invoice.read
// reads them: the bare string, no whitespace or "lightning:" scheme.
//
// Known difference: an expirySeconds of zero or less is refused (400); phoenixd
// makes an invoice that expires at once (zero) or fails (negative).
//
// Authentication is HTTP basic with any user name; the password is checked as
// phoenixd checks it, the limited-access one being refused by /payinvoice.
// The websocket also accepts the password as a Sec-WebSocket-Protocol value.
// When Config.WebhookSecret is set, each payment_received event is also POSTed
// to Config.WebhookURLs and to the invoice's webhookUrl, signed with
// X-Phoenix-Signature.
//
// Stop closes the listener and every websocket; Start listens again on the
// same port, so a client sees a node that went down and came back.
package phoenixdfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
	"github.com/l402kit/l402kit/memory"
)

// Config sets up a Server.
type Config struct {
	// Password is the full-access http-password; required.
	Password string
	// LimitedPassword, when set, is http-password-limited-access: accepted
	// everywhere except /payinvoice.
	LimitedPassword string
	// BlockHeight is what /getinfo reports; default 101.
	BlockHeight int64
	// Version is what /getinfo reports; default "0.8.0-l402kit-fake".
	Version string
	// WebhookSecret signs webhook calls; webhooks are sent only when set.
	WebhookSecret string
	// WebhookURLs receive every payment_received event (phoenix.conf's
	// webhook= lines).
	WebhookURLs []string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running fake phoenixd.
type Server struct {
	// offerMu guards offer, the node's default offer once /getoffer made it.
	offerMu sync.Mutex
	offer   string
	node    *memory.Node
	b       *backend.Backend // the node as the portable layer presents it: requests checked as a real node checks them
	cfg     Config
	log     *slog.Logger
	addr    string
	hc      *http.Client // for webhooks

	ctx    context.Context // lives until Close: invoice watchers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	noWS     bool // SetWebsocketAvailable(false)
	srv      *http.Server
	conns    map[*websocket.Conn]context.CancelFunc
	meta     map[backend.PaymentHash]invoiceMeta
	watching map[backend.PaymentHash]bool
}

type invoiceMeta struct {
	externalID *string
	webhookURL string
	descHash   bool
}

// New starts a fake phoenixd in front of node on 127.0.0.1 with a free port.
func New(node *memory.Node, cfg Config) (*Server, error) {
	if cfg.Password == "" {
		return nil, errors.New("phoenixdfake: Config.Password is required")
	}
	if cfg.BlockHeight == 0 {
		cfg.BlockHeight = 101
	}
	if cfg.Version == "" {
		cfg.Version = "0.8.0-l402kit-fake"
	}
	s := &Server{
		node:     node,
		b:        backend.New(node, backend.Options{}),
		cfg:      cfg,
		log:      cfg.Logger,
		hc:       &http.Client{Timeout: 5 * time.Second},
		conns:    map[*websocket.Conn]context.CancelFunc{},
		meta:     map[backend.PaymentHash]invoiceMeta{},
		watching: map[backend.PaymentHash]bool{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("phoenixdfake: listen: %w", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

// URL is the base URL to give the adapter, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return "http://" + s.addr }

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// Node is the memory node behind the fake.
func (s *Server) Node() *memory.Node { return s.node }

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("phoenixdfake: serve", "err", err)
		}
	}()
}

// Stop makes the fake unreachable: the listener and all connections close,
// so clients get "connection refused". Invoices and the node survive.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	conns := s.conns
	s.conns = map[*websocket.Conn]context.CancelFunc{}
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	for c, cancel := range conns {
		cancel()
		c.CloseNow()
	}
	// Close, not Shutdown: a node that dies does not finish its requests.
	return srv.Close()
}

// Start listens again on the same address after Stop.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	var ln net.Listener
	var err error
	for {
		ln, err = net.Listen("tcp", s.addr)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("phoenixdfake: listen again on %s: %w (last error: %v)", s.addr, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.serve(ln)
	return nil
}

// SetWebsocketAvailable(false) closes every open websocket and answers new
// ones 503 while the rest of the API keeps working, as behind a reverse
// proxy that drops websocket upgrades; true accepts them again. It lets tests
// exercise a client's polling fallback.
func (s *Server) SetWebsocketAvailable(ok bool) {
	s.mu.Lock()
	s.noWS = !ok
	var conns map[*websocket.Conn]context.CancelFunc
	if !ok {
		conns = s.conns
		s.conns = map[*websocket.Conn]context.CancelFunc{}
	}
	s.mu.Unlock()
	for c, cancel := range conns {
		cancel()
		c.CloseNow()
	}
}

// Close stops the fake and its invoice watchers. It does not close the node.
func (s *Server) Close() error {
	err := s.Stop(context.Background())
	s.cancel()
	s.wg.Wait()
	return err
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/getinfo", s.route(http.MethodGet, false, s.getInfo))
	mux.HandleFunc("/createinvoice", s.route(http.MethodPost, false, s.createInvoice))
	mux.HandleFunc("/payments/incoming/{paymentHash}", s.route(http.MethodGet, false, s.incomingPayment))
	mux.HandleFunc("/payinvoice", s.route(http.MethodPost, true, s.payInvoice))
	mux.HandleFunc("/payoffer", s.route(http.MethodPost, true, s.payOffer))
	mux.HandleFunc("/getoffer", s.route(http.MethodGet, false, s.getOffer))
	mux.HandleFunc("/websocket", s.websocket)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		text(w, http.StatusNotFound, "Unknown endpoint (check api doc)")
	})
	return mux
}

// route checks method and password in phoenixd's order (ktor routes by
// method first, then authenticates).
func (s *Server) route(method string, fullAccess bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			text(w, http.StatusMethodNotAllowed, "Invalid http method (use the correct GET/POST)")
			return
		}
		_, pw, ok := r.BasicAuth()
		if !ok || !s.passwordOK(pw, fullAccess) {
			w.Header().Set("WWW-Authenticate", `Basic realm="Ktor Server", charset=UTF-8`)
			text(w, http.StatusUnauthorized, "Invalid authentication (use basic auth with the http password set in phoenix.conf)")
			return
		}
		h(w, r)
	}
}

func (s *Server) passwordOK(pw string, fullAccess bool) bool {
	if hmac.Equal([]byte(pw), []byte(s.cfg.Password)) {
		return true
	}
	return !fullAccess && s.cfg.LimitedPassword != "" && hmac.Equal([]byte(pw), []byte(s.cfg.LimitedPassword))
}

func text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

func missing(w http.ResponseWriter, name string) {
	text(w, http.StatusBadRequest, "Request parameter "+name+" is missing")
}

func badType(w http.ResponseWriter, name, typ string) {
	text(w, http.StatusBadRequest, "Request parameter "+name+" couldn't be parsed/converted to "+typ)
}

// formValue reads a form parameter as ktor's receiveParameters does: from
// the url-encoded body. ok is false when the parameter is absent.
func formValue(r *http.Request, name string) (string, bool) {
	vs, ok := r.PostForm[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

func optionalLong(w http.ResponseWriter, r *http.Request, name string) (v int64, present, ok bool) {
	s, present := formValue(r, name)
	if !present {
		return 0, false, true
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		badType(w, name, "integer")
		return 0, true, false
	}
	return v, true, true
}

type generatedInvoice struct {
	AmountSat   *int64 `json:"amountSat,omitempty"`
	PaymentHash string `json:"paymentHash"`
	Serialized  string `json:"serialized"`
}

func (s *Server) createInvoice(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	amountSat, hasAmount, ok := optionalLong(w, r, "amountSat")
	if !ok {
		return
	}
	if hasAmount && amountSat <= 0 {
		// lightning-kmp's Bolt11Invoice requires a positive amount; the
		// IllegalArgumentException reaches phoenixd's StatusPages as a 500
		// with its message.
		text(w, http.StatusInternalServerError, "amount is not valid")
		return
	}
	desc, hasDesc := formValue(r, "description")
	if hasDesc && len(utf16.Encode([]rune(desc))) > 128 {
		text(w, http.StatusBadRequest, "Request parameter description is too long (max 128 characters)")
		return
	}
	var descHash *[32]byte
	if v, ok := formValue(r, "descriptionHash"); ok {
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != 32 {
			badType(w, "descriptionHash", "hex32")
			return
		}
		descHash = new([32]byte)
		copy(descHash[:], b)
	}
	if hasDesc == (descHash != nil) {
		text(w, http.StatusBadRequest, "Must provide either a description or descriptionHash")
		return
	}
	expiry, hasExpiry, ok := optionalLong(w, r, "expirySeconds")
	if !ok {
		return
	}
	req := backend.InvoiceRequest{Amount: backend.Sat(amountSat), DescriptionHash: descHash}
	if hasDesc {
		req.Memo = desc
	}
	if hasExpiry {
		if expiry <= 0 {
			text(w, http.StatusBadRequest, "expirySeconds must be positive")
			return
		}
		req.Expiry = time.Duration(expiry) * time.Second
	} else {
		req.Expiry = time.Hour // phoenixd's documented default
	}
	var meta invoiceMeta
	meta.descHash = descHash != nil
	if v, ok := formValue(r, "externalId"); ok {
		meta.externalID = &v
	}
	if v, ok := formValue(r, "webhookUrl"); ok {
		if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			badType(w, "webhookUrl", "url")
			return
		}
		meta.webhookURL = v
	}
	inv, err := s.b.CreateInvoice(r.Context(), req)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	s.mu.Lock()
	s.meta[inv.PaymentHash] = meta
	s.mu.Unlock()
	s.watch(inv.PaymentHash)

	out := generatedInvoice{PaymentHash: inv.PaymentHash.String(), Serialized: inv.PaymentRequest}
	if inv.Amount > 0 {
		sat := inv.Amount.Sats()
		out.AmountSat = &sat
	}
	writeJSON(w, out)
}

// nodeError answers a memory node failure as phoenixd answers an exception:
// 400 for a bad request, otherwise 500 with the message.
func (s *Server) nodeError(w http.ResponseWriter, err error) {
	if errors.Is(err, backend.ErrInvalid) {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	text(w, http.StatusInternalServerError, err.Error())
}

type incomingPayment struct {
	Type         string  `json:"type"`
	SubType      string  `json:"subType"`
	PaymentHash  string  `json:"paymentHash"`
	Preimage     string  `json:"preimage"`
	ExternalID   *string `json:"externalId,omitempty"`
	Description  *string `json:"description,omitempty"`
	Invoice      string  `json:"invoice"`
	IsPaid       bool    `json:"isPaid"`
	IsExpired    bool    `json:"isExpired"`
	RequestedSat *int64  `json:"requestedSat,omitempty"`
	ReceivedSat  int64   `json:"receivedSat"`
	Fees         int64   `json:"fees"`
	ExpiresAt    int64   `json:"expiresAt"`
	CompletedAt  *int64  `json:"completedAt,omitempty"`
	CreatedAt    int64   `json:"createdAt"`
}

func (s *Server) incomingPayment(w http.ResponseWriter, r *http.Request) {
	hash, err := backend.ParsePaymentHash(r.PathValue("paymentHash"))
	if err != nil {
		badType(w, "paymentHash", "hex32")
		return
	}
	inv, err := s.b.LookupInvoice(r.Context(), hash)
	if errors.Is(err, backend.ErrNotFound) {
		text(w, http.StatusNotFound, "Not found")
		return
	}
	if err != nil {
		s.nodeError(w, err)
		return
	}
	s.mu.Lock()
	meta, known := s.meta[hash]
	s.mu.Unlock()
	if !known {
		// Not made through this API (a hold invoice made on the node
		// directly, say): phoenixd would not know it either.
		text(w, http.StatusNotFound, "Not found")
		return
	}
	out := incomingPayment{
		Type:        "incoming_payment",
		SubType:     "lightning",
		PaymentHash: hash.String(),
		ExternalID:  meta.externalID,
		Invoice:     inv.PaymentRequest,
		IsPaid:      inv.State == backend.StateSettled,
		IsExpired:   time.Now().After(inv.ExpiresAt),
		ReceivedSat: inv.AmountReceived.Sats(),
		ExpiresAt:   inv.ExpiresAt.UnixMilli(),
		CreatedAt:   inv.CreatedAt.UnixMilli(),
	}
	if inv.Preimage != nil {
		out.Preimage = inv.Preimage.String()
	}
	if !meta.descHash {
		memo := inv.Memo
		out.Description = &memo
	}
	if inv.Amount > 0 {
		sat := inv.Amount.Sats()
		out.RequestedSat = &sat
	}
	if out.IsPaid {
		done := inv.SettledAt.UnixMilli()
		out.CompletedAt = &done
	}
	writeJSON(w, out)
}

type paymentSent struct {
	RecipientAmountSat int64  `json:"recipientAmountSat"`
	RoutingFeeSat      int64  `json:"routingFeeSat"`
	PaymentID          string `json:"paymentId"`
	PaymentHash        string `json:"paymentHash"`
	PaymentPreimage    string `json:"paymentPreimage"`
}

type paymentFailed struct {
	PaymentHash string `json:"paymentHash"`
	Reason      string `json:"reason"`
}

func (s *Server) payInvoice(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	amountSat, hasAmount, ok := optionalLong(w, r, "amountSat")
	if !ok {
		return
	}
	bolt11String, present := formValue(r, "invoice")
	if !present {
		missing(w, "invoice")
		return
	}
	// lightning-kmp's Bolt11Invoice.read takes the bare invoice only: no
	// surrounding whitespace, no "lightning:" scheme.
	if _, err := bolt11.Decode(bolt11String); err != nil {
		badType(w, "invoice", "bolt11invoice")
		return
	}
	d, err := backend.DecodeInvoice(bolt11String)
	if err != nil {
		badType(w, "invoice", "bolt11invoice")
		return
	}
	amount := d.Amount
	if hasAmount {
		amount = backend.Sat(amountSat)
	}
	if amount == 0 {
		missing(w, "amountSat")
		return
	}
	opts := backend.PayOptions{}
	if d.Amount == 0 {
		opts.Amount = amount
	} else if hasAmount {
		opts.Amount = amount // memory refuses a different amount; phoenixd would try to pay it
	}
	pay, err := s.b.PayInvoice(r.Context(), bolt11String, opts)
	if err != nil {
		writeJSON(w, paymentFailed{PaymentHash: d.PaymentHash.String(), Reason: err.Error()})
		return
	}
	writeJSON(w, paymentSent{
		RecipientAmountSat: pay.Amount.Sats(),
		RoutingFeeSat:      pay.Fee.Sats(),
		PaymentID:          newUUID(),
		PaymentHash:        pay.PaymentHash.String(),
		PaymentPreimage:    pay.Preimage.String(),
	})
}

type nodeInfo struct {
	NodeID      string     `json:"nodeId"`
	Channels    []struct{} `json:"channels"`
	Chain       string     `json:"chain"`
	BlockHeight int64      `json:"blockHeight"`
	Version     string     `json:"version"`
}

func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) {
	info, err := s.b.Info(r.Context())
	if err != nil {
		s.nodeError(w, err)
		return
	}
	writeJSON(w, nodeInfo{
		NodeID:      info.NodeID,
		Channels:    []struct{}{},
		Chain:       info.Network,
		BlockHeight: s.cfg.BlockHeight,
		Version:     s.cfg.Version,
	})
}

func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		text(w, http.StatusMethodNotAllowed, "Invalid http method (use the correct GET/POST)")
		return
	}
	s.mu.Lock()
	noWS := s.noWS
	s.mu.Unlock()
	if noWS {
		text(w, http.StatusServiceUnavailable, "websocket unavailable")
		return
	}
	_, pw, ok := r.BasicAuth()
	authed := ok && s.passwordOK(pw, false)
	if !authed {
		for _, p := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
			if p = strings.TrimSpace(p); p != "" && s.passwordOK(p, false) {
				authed = true
			}
		}
	}
	if !authed {
		text(w, http.StatusUnauthorized, "Invalid authentication (use basic auth with the http password set in phoenix.conf)")
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	if s.srv == nil || s.noWS { // stopped while upgrading
		s.mu.Unlock()
		cancel()
		c.CloseNow()
		return
	}
	s.conns[c] = cancel
	s.mu.Unlock()
	// phoenixd never reads from the socket; CloseRead answers pings and
	// notices when the client goes away.
	ctx = c.CloseRead(ctx)
	<-ctx.Done()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	cancel()
	c.CloseNow()
}

// wsEvent is a payment_received event as the websocket sends it (nulls left
// out); webhookEvent as webhooks send it (nulls written).
type wsEvent struct {
	Type        string  `json:"type"`
	Timestamp   int64   `json:"timestamp"`
	AmountSat   int64   `json:"amountSat"`
	PaymentHash string  `json:"paymentHash"`
	ExternalID  *string `json:"externalId,omitempty"`
}

type webhookEvent struct {
	Type        string  `json:"type"`
	Timestamp   int64   `json:"timestamp"`
	AmountSat   int64   `json:"amountSat"`
	PaymentHash string  `json:"paymentHash"`
	ExternalID  *string `json:"externalId"`
	PayerNote   *string `json:"payerNote"`
	PayerKey    *string `json:"payerKey"`
}

// watch follows an invoice on the memory node, whoever pays it, and emits
// payment_received when it settles, as phoenixd does when a payment arrives.
func (s *Server) watch(hash backend.PaymentHash) {
	s.mu.Lock()
	if s.watching[hash] {
		s.mu.Unlock()
		return
	}
	s.watching[hash] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			inv, err := s.b.WaitInvoice(s.ctx, hash)
			if s.ctx.Err() != nil {
				return
			}
			if errors.Is(err, backend.ErrUnavailable) {
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			if err != nil {
				return
			}
			if inv.State == backend.StateSettled {
				s.emit(inv)
			}
			return // settled, canceled or expired: nothing more will happen
		}
	}()
}

func (s *Server) emit(inv *backend.Invoice) {
	s.mu.Lock()
	meta := s.meta[inv.PaymentHash]
	conns := make([]*websocket.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	now := time.Now().UnixMilli()
	ev := wsEvent{Type: "payment_received", Timestamp: now, AmountSat: inv.AmountReceived.Sats(), PaymentHash: inv.PaymentHash.String(), ExternalID: meta.externalID}
	msg, _ := json.MarshalIndent(ev, "", "    ")
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			s.log.Debug("phoenixdfake: websocket write", "err", err)
		}
		cancel()
	}
	if s.cfg.WebhookSecret == "" {
		return
	}
	urls := append([]string(nil), s.cfg.WebhookURLs...)
	if meta.webhookURL != "" {
		urls = append(urls, meta.webhookURL)
	}
	body, _ := json.MarshalIndent(webhookEvent{Type: ev.Type, Timestamp: now, AmountSat: ev.AmountSat, PaymentHash: ev.PaymentHash, ExternalID: meta.externalID}, "", "    ")
	for _, u := range urls {
		s.postWebhook(u, body)
	}
}

func (s *Server) postWebhook(u string, body []byte) {
	m := hmac.New(sha256.New, []byte(s.cfg.WebhookSecret))
	m.Write(body)
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Phoenix-Signature", hex.EncodeToString(m.Sum(nil)))
	resp, err := s.hc.Do(req)
	if err != nil {
		s.log.Warn("phoenixdfake: webhook failure", "url", u, "err", err) // phoenixd logs and moves on too
		return
	}
	resp.Body.Close()
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
