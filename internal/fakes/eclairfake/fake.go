// Package eclairfake is a wire-level stand-in for Eclair's HTTP API, backed
// by an in-process memory node, so the eclair adapter can be tested over a
// real socket without a JVM, bitcoind and channels.
//
// It serves the routes the adapter uses (getinfo, createinvoice,
// getreceivedinfo, getinvoice, payinvoice, getsentinfo, and for offers
// createoffer, listoffers, disableoffer, payoffer, listreceivedpayments:
// offer.go) as form-encoded POSTs
// behind HTTP basic auth, and the /ws websocket with payment-received events.
// Field names, types and units follow Eclair's API documentation and its
// JSON serializers (eclair v0.14.x, docs commit 3bfce0cf on the slate-doc
// branch, source commit 5b765e02): amounts in millisatoshis, invoice
// timestamps and expiries in seconds, record timestamps as {"iso","unix"}.
// Errors have Eclair's shape, {"error": "..."} with the status Eclair's
// akka-http directives give: 401 for missing or wrong credentials, 404
// {"error":"Not found"} for an unknown payment hash, 400 for a missing or
// malformed form field, 500 with Eclair's generic message for failures
// inside the node.
//
// Invoice form fields are read as Bolt11Invoice.fromString reads them: the
// bare string, without whitespace or a "lightning:" scheme (400 otherwise).
// A createinvoice amountMsat of zero or less fails with the generic 500, as
// Bolt11Invoice's "amount is not valid" requirement makes Eclair fail.
//
// Known differences from a real Eclair, kept because tests do not need them:
// a wrong password is refused at once (Eclair waits a second to slow down
// brute force); creating an invoice whose payment hash exists fails at once
// with the 500 (Eclair fails the same way, but only when its ask times out;
// likewise for an amount of zero or less); an expireIn of zero gives the
// memory node's default expiry (Eclair writes an invoice that expires at
// once);
// payments complete in process through the memory node, which pays only its
// own invoices.
//
// A Server can be stopped and started again on the same port, which is how
// tests make the node unreachable.
package eclairfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

// Config sets up a Server.
type Config struct {
	// Node is the memory node behind the API; required.
	Node *memnode.Node
	// Password is the API password (the basic-auth user name is ignored,
	// as Eclair ignores it).
	Password string
	// Addr is where to listen; default 127.0.0.1:0 (a free port, kept across
	// Stop and Start).
	Addr string
	// Version is what getinfo reports; default "0.14.1-eclairfake".
	Version string
	// DisabledFeatures are invoice feature bits this node has set to
	// "disabled" in eclair.features (either bit of the pair). Eclair's
	// reference.conf enables every invoice feature of BOLT 9, so the
	// default is none. An invoice that requires one is refused by
	// PaymentInitiator before anything is recorded: see payInvoice.
	DisabledFeatures []int
	// Logger receives the fake's own diagnostics; default slog.Default().
	Logger *slog.Logger
}

// Server is a running fake Eclair API.
type Server struct {
	cfg  Config
	node *memnode.Node
	b    *backend.Backend // the node as the portable layer presents it: requests checked as a real node checks them
	log  *slog.Logger

	// ctx lives as long as the Server (across Stop/Start); it bounds the
	// invoice watchers and payments, which belong to the node, not to a
	// listener.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	addr    string // host:port, fixed after the first Start
	srv     *http.Server
	ln      net.Listener
	served  chan struct{} // closed when the current Serve returns
	ws      map[*wsClient]struct{}
	sent    []*outgoing
	watched map[backend.PaymentHash]bool
	// offerCreated and offerDisabled are the OfferData times the offers
	// database keeps, by offer id.
	offerCreated  map[string]timestamp
	offerDisabled map[string]timestamp
	closed        bool
	noWS          bool // /ws refused and sockets dropped, the rest served

	wg sync.WaitGroup
}

// New returns a Server that is not yet listening; call Start.
func New(cfg Config) (*Server, error) {
	if cfg.Node == nil {
		return nil, errors.New("eclairfake: Config.Node is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Version == "" {
		cfg.Version = "0.14.1-eclairfake"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:     cfg,
		node:    cfg.Node,
		b:       backend.New(cfg.Node, backend.Options{}),
		log:     cfg.Logger,
		ctx:     ctx,
		cancel:  cancel,
		addr:    cfg.Addr,
		ws:      map[*wsClient]struct{}{},
		watched: map[backend.PaymentHash]bool{},

		offerCreated:  map[string]timestamp{},
		offerDisabled: map[string]timestamp{},
	}, nil
}

// Start begins listening: on Config.Addr the first time, on the same
// address afterwards.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("eclairfake: server closed")
	}
	if s.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("eclairfake: listen: %w", err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	s.srv, s.ln = srv, ln
	served := make(chan struct{})
	s.served = served
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("eclairfake: serve", "err", err)
		}
	}()
	return nil
}

// Stop closes the listener and every connection, websockets included, so
// clients see the node go away; the memory node and its invoices stay.
func (s *Server) Stop() error {
	s.mu.Lock()
	srv, ln, served := s.srv, s.ln, s.served
	s.srv, s.ln = nil, nil
	clients := make([]*wsClient, 0, len(s.ws))
	for c := range s.ws {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	// Close the listener here rather than leave it to Serve: if Serve has
	// not reached its accept loop yet, srv.Close would not know of it, and
	// a client could still connect after Stop returned.
	ln.Close()
	err := srv.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil // the listener closed just above
	}
	<-served
	for _, c := range clients {
		c.conn.CloseNow()
	}
	return err
}

// Close stops the server for good and ends its background work. It does not
// close the memory node, which the caller owns.
func (s *Server) Close() error {
	err := s.Stop()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return err
}

// SetEvents turns the /ws websocket off (false: open sockets are dropped and
// new ones refused with 503, while the other routes keep answering) or back
// on, for testing clients that must fall back to polling.
func (s *Server) SetEvents(on bool) {
	s.mu.Lock()
	s.noWS = !on
	var drop []*wsClient
	if !on {
		for c := range s.ws {
			drop = append(drop, c)
		}
	}
	s.mu.Unlock()
	for _, c := range drop {
		c.conn.CloseNow()
	}
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is the API's base URL, http://host:port.
func (s *Server) URL() string { return "http://" + s.Addr() }

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /getinfo", s.getInfo)
	mux.HandleFunc("POST /createinvoice", s.createInvoice)
	mux.HandleFunc("POST /getinvoice", s.getInvoice)
	mux.HandleFunc("POST /getreceivedinfo", s.getReceivedInfo)
	mux.HandleFunc("POST /payinvoice", s.payInvoice)
	mux.HandleFunc("POST /getsentinfo", s.getSentInfo)
	mux.HandleFunc("POST /createoffer", s.createOffer)
	mux.HandleFunc("POST /listoffers", s.listOffers)
	mux.HandleFunc("POST /disableoffer", s.disableOffer)
	mux.HandleFunc("POST /payoffer", s.payOffer)
	mux.HandleFunc("POST /listreceivedpayments", s.listReceivedPayments)
	mux.HandleFunc("GET /ws", s.webSocket)
	return s.authenticated(routed(mux))
}

// authenticated checks basic auth before routing, as Eclair's
// securedHandler does, so even an unknown route answers 401 without
// credentials. Messages are akka-http's default rejection texts.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="Access restricted",charset=UTF-8`)
			writeError(w, http.StatusUnauthorized, "The resource requires authentication, which was not supplied with the request")
			return
		}
		if pass != s.cfg.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="Access restricted",charset=UTF-8`)
			writeError(w, http.StatusUnauthorized, "The supplied authentication is invalid")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// routed turns the mux's plain-text 404 and 405 into Eclair's JSON errors.
func routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			// Either no such path or a wrong method; akka-http tells them apart.
			r2 := r.Clone(r.Context())
			for _, m := range []string{http.MethodPost, http.MethodGet} {
				r2.Method = m
				if _, p := mux.Handler(r2); p != "" {
					writeError(w, http.StatusMethodNotAllowed, "HTTP method not allowed, supported methods: "+m)
					return
				}
			}
			writeError(w, http.StatusNotFound, "The requested resource could not be found.")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Eclair's generic message for failures inside the node (its exception
// handler hides the cause, which goes to its log).
const internalErrorMessage = "API call failed: check logs for more details"

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"`+internalErrorMessage+`"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// writeError answers {"error": msg}, pretty-printed as Eclair's rejection
// handler does.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.MarshalIndent(errorResponse{Error: msg}, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

type errorResponse struct {
	Error string `json:"error"`
}

// nodeError answers for an error from the memory node: a node that is down
// behaves as a stopped Eclair would not (it would not answer at all), so the
// fake answers 503, which proxies in front of a stopped node give.
func (s *Server) nodeError(w http.ResponseWriter, err error) {
	if errors.Is(err, backend.ErrUnavailable) {
		writeError(w, http.StatusServiceUnavailable, "The server is currently unavailable (because it is overloaded or down for maintenance).")
		return
	}
	s.log.Debug("eclairfake: node call failed", "err", err)
	writeError(w, http.StatusInternalServerError, internalErrorMessage)
}

// parseForm reads url-encoded and multipart bodies alike: eclair-cli and
// curl -F send multipart, most clients url-encoded.
func parseForm(r *http.Request) error {
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return err
	}
	return nil
}

// field returns a form field and whether it was present.
func field(r *http.Request, name string) (string, bool) {
	if vs, ok := r.PostForm[name]; ok && len(vs) > 0 {
		return vs[0], true
	}
	if r.MultipartForm != nil {
		if vs, ok := r.MultipartForm.Value[name]; ok && len(vs) > 0 {
			return vs[0], true
		}
	}
	return "", false
}

func missing(w http.ResponseWriter, name string) {
	writeError(w, http.StatusBadRequest, fmt.Sprintf("Request is missing required form field '%s'", name))
}

func malformed(w http.ResponseWriter, name, why string) {
	writeError(w, http.StatusBadRequest, fmt.Sprintf("The form field '%s' was malformed:\n%s", name, why))
}

func parseBytes32(s string) ([32]byte, error) {
	var out [32]byte
	b, err := hex.DecodeString(s)
	if err != nil {
		return out, err
	}
	if len(b) != 32 {
		return out, fmt.Errorf("expected 32 bytes, got %d", len(b))
	}
	copy(out[:], b)
	return out, nil
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) {
	info, err := s.b.Info(r.Context())
	if err != nil {
		s.nodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, getInfoJSON{
		Version: s.cfg.Version,
		NodeID:  info.NodeID,
		Alias:   info.Alias,
		Color:   "#49daaa",
		Features: featuresJSON{Activated: map[string]string{
			"var_onion_optin": "mandatory",
			"payment_secret":  "mandatory",
			"basic_mpp":       "optional",
		}},
		ChainHash:       chainHash(info.Network),
		Network:         info.Network,
		BlockHeight:     info.BlockHeight,
		PublicAddresses: []string{},
		InstanceID:      newUUID(),
	})
}
