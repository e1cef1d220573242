// Package phoenixdfake is a wire-level stand-in for phoenixd's HTTP API,
// backed by a memnode.Node, for testing the phoenixd adapter (and anything
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
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
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
	node    *memnode.Node
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

// New starts a fake phoenixd in front of node on 127.0.0.1 with a free port.
func New(node *memnode.Node, cfg Config) (*Server, error) {
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
func (s *Server) Node() *memnode.Node { return s.node }

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
