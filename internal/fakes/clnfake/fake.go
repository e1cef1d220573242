// Package clnfake is a wire-level fake of Core Lightning for tests: it
// serves lightningd's JSON-RPC 2.0 on a real unix socket and CLNRest on a
// real HTTP listener on 127.0.0.1, backed by a *memnode.Node, with the method
// names, field names and types, and error codes and messages of Core
// Lightning's documentation (doc/schemas, v26.06) and lightningd's source.
// With Config.HoldPlugin it also answers the JSON-RPC methods of the
// BoltzExchange/hold plugin (v0.3.x).
//
// Config.Version picks the Core Lightning release played (default
// v26.06.6): xpay exists from v24.11, pay until v27.03 (which removes it),
// so a v27.03 fake answers pay with "Unknown command 'pay'" and a v24.08 one
// has no xpay; pay.go has the paying methods and the source they follow.
//
// Methods: getinfo, help, invoice, createinvoice, listinvoices,
// waitinvoice, xpay, pay, listpays, listsendpays and signinvoice; with the plugin holdinvoice, injectholdinvoice,
// listholdinvoices, settleholdinvoice and cancelholdinvoice. Anything else
// is "Unknown command" (-32601), as from lightningd. Deviations from the
// real node, all on paths the adapter does not depend on: signinvoice
// registers the invoice with the memory node (see its comment), the BOLT11
// strings signinvoice and createinvoice return are the memory node's (same
// fields, its own timestamp and payment secret), the fake
// checks the signature lightningd ignores, and listinvoices'
// index/start/limit are accepted but not applied. What lightningd refuses,
// the fake refuses with the same code and message: createinvoice of an
// invoice with only a description hash, invoice's descriptions over 639
// bytes without deschashonly and string parameters with \u escapes.
//
// Stop closes both listeners and every open connection, as a lightningd
// that exits would, and takes the memory node down; Start listens again on
// the same socket path and port.
package clnfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

// Config sets up a Fake.
type Config struct {
	// Node answers for the fake; required.
	Node *memnode.Node
	// SocketPath is where the JSON-RPC socket is made; required (use a
	// path under t.TempDir(): unix socket paths are limited to ~100 bytes).
	SocketPath string
	// Rune is the rune CLNRest accepts; default "fake-rune".
	Rune string
	// HoldPlugin adds the hold plugin's methods.
	HoldPlugin bool
	// Route is where this node's payments go, as a payer node with a
	// channel into the node under test; default Node, which pays only its
	// own invoices.
	Route *memnode.Node
	// Version is the Core Lightning release the fake plays, as getinfo
	// reports it; it decides which paying methods exist: xpay from v24.11,
	// pay until v27.03. Default DefaultVersion.
	Version string
	// Logger receives debug logs; default discards.
	Logger *slog.Logger
}

// Fake is a running fake node.
type Fake struct {
	cfg   Config
	node  *memnode.Node
	b     *backend.Backend // the node as the portable layer presents it: requests checked as a real node checks them
	state *ledger
	log   *slog.Logger

	version string
	release release
	route   *backend.Backend // pays for xpay and pay

	mu       sync.Mutex
	unixLn   net.Listener
	httpSrv  *http.Server
	httpAddr string // host:port, kept across restarts
	conns    map[net.Conn]struct{}
	running  bool
	wg       sync.WaitGroup
	stopCtx  context.Context
	stopFunc context.CancelFunc

	// waiting counts waitinvoice calls in progress, so a test can stop the
	// node while a wait is certainly in place instead of sleeping.
	waiting atomic.Int32
}

// Waiting is the number of waitinvoice calls the fake is serving.
func (f *Fake) Waiting() int { return int(f.waiting.Load()) }

// New starts a fake on cfg.SocketPath and a free port on 127.0.0.1.
func New(cfg Config) (*Fake, error) {
	if cfg.Node == nil || cfg.SocketPath == "" {
		return nil, errors.New("clnfake: Config.Node and Config.SocketPath are required")
	}
	if cfg.Rune == "" {
		cfg.Rune = "fake-rune"
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	rel, err := parseRelease(cfg.Version)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Fake{
		cfg:      cfg,
		node:     cfg.Node,
		b:        backend.New(cfg.Node, backend.Options{}),
		state:    newLedger(),
		log:      log,
		conns:    map[net.Conn]struct{}{},
		httpAddr: "127.0.0.1:0",
		version:  cfg.Version,
		release:  rel,
	}
	f.route = f.b
	if cfg.Route != nil {
		f.route = backend.New(cfg.Route, backend.Options{})
	}
	if err := f.Start(); err != nil {
		return nil, err
	}
	return f, nil
}

// SocketPath is the JSON-RPC socket, for cln:// URLs.
func (f *Fake) SocketPath() string { return f.cfg.SocketPath }

// RESTAddr is CLNRest's host:port, for clnrest:// URLs (with plainhttp=1).
func (f *Fake) RESTAddr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.httpAddr
}

// Rune is the rune CLNRest accepts.
func (f *Fake) Rune() string { return f.cfg.Rune }

// Calls reports how many times method was called, answered or refused.
func (f *Fake) Calls(method string) int {
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	return f.state.calls[method]
}

// Node is the memory node behind the fake.
func (f *Fake) Node() *memnode.Node { return f.node }

// Start listens (again) on the socket path and port; the node comes back up.
func (f *Fake) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running {
		return nil
	}
	// lightningd removes a stale socket file before binding, so do we.
	if err := os.Remove(f.cfg.SocketPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clnfake: %w", err)
	}
	uln, err := net.Listen("unix", f.cfg.SocketPath)
	if err != nil {
		return fmt.Errorf("clnfake: %w", err)
	}
	hln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		uln.Close()
		return fmt.Errorf("clnfake: %w", err)
	}
	f.httpAddr = hln.Addr().String()
	f.unixLn = uln
	f.stopCtx, f.stopFunc = context.WithCancel(context.Background())
	f.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(f.serveREST),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return f.stopCtx },
	}
	f.node.SetAvailable(true)
	f.running = true
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		f.acceptUnix(uln)
	}()
	srv := f.httpSrv
	go func() {
		defer f.wg.Done()
		if err := srv.Serve(hln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.log.Debug("clnfake: rest serve", "err", err)
		}
	}()
	return nil
}

// Stop closes the listeners and all connections, as an exiting lightningd
// would, and takes the memory node down. Calls in progress end.
func (f *Fake) Stop() error {
	f.mu.Lock()
	if !f.running {
		f.mu.Unlock()
		return nil
	}
	f.running = false
	// Connections go first, so no call in progress gets a reply: an
	// exiting lightningd just drops them.
	f.unixLn.Close()
	for c := range f.conns {
		c.Close()
	}
	srv := f.httpSrv
	f.mu.Unlock()
	err := srv.Close()
	f.stopFunc()
	f.node.SetAvailable(false)
	f.wg.Wait()
	os.Remove(f.cfg.SocketPath)
	return err
}

// Close stops the fake for good.
func (f *Fake) Close() error { return f.Stop() }

func (f *Fake) acceptUnix(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if !f.running {
			f.mu.Unlock()
			c.Close()
			return
		}
		f.conns[c] = struct{}{}
		ctx := f.stopCtx
		f.wg.Add(1)
		f.mu.Unlock()
		go func() {
			defer f.wg.Done()
			f.serveConn(ctx, c)
			f.mu.Lock()
			delete(f.conns, c)
			f.mu.Unlock()
		}()
	}
}

// rpcRequest is a JSON-RPC 2.0 request as lightningd reads it.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// serveConn answers requests on one connection, each in its own goroutine
// (lightningd runs commands on a connection concurrently and replies as they
// finish, matched by id). Closing the connection cancels its commands.
func (f *Fake) serveConn(parent context.Context, c net.Conn) {
	defer c.Close()
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var wmu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	dec := json.NewDecoder(c)
	for {
		var req rpcRequest
		if err := dec.Decode(&req); err != nil {
			cancel()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			result, rerr := f.dispatch(ctx, req.Method, req.Params)
			if rerr != nil && rerr.Data == errDrop {
				c.Close()
				return
			}
			resp := map[string]any{"jsonrpc": "2.0", "id": req.ID}
			if rerr != nil {
				resp["error"] = rerr
			} else {
				resp["result"] = result
			}
			b, err := json.Marshal(resp)
			if err != nil {
				f.log.Debug("clnfake: encode reply", "err", err)
				return
			}
			wmu.Lock()
			defer wmu.Unlock()
			// lightningd ends every reply with two newlines.
			if _, err := c.Write(append(b, '\n', '\n')); err != nil {
				f.log.Debug("clnfake: write reply", "err", err)
			}
		}()
	}
}

// serveREST is CLNRest: POST /v1/<method>, Rune header, JSON object body;
// 201 with the result, or the error object with 403 (no rune), 401 (bad
// rune), 404 (unknown method) or 500 (any other RPC error).
func (f *Fake) serveREST(w http.ResponseWriter, r *http.Request) {
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	const prefix = "/v1/"
	if len(r.URL.Path) <= len(prefix) || r.URL.Path[:len(prefix)] != prefix {
		writeJSON(http.StatusNotFound, rpcError{Code: codeMethodNotFound, Message: "Not Found"})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(http.StatusMethodNotAllowed, map[string]any{"code": nil, "message": "Method not allowed"})
		return
	}
	method := r.URL.Path[len(prefix):]
	rn := r.Header.Get("Rune")
	if rn == "" {
		writeJSON(http.StatusForbidden, rpcError{Code: 1501, Message: "Not authorized: Missing rune"})
		return
	}
	if rn != f.cfg.Rune {
		writeJSON(http.StatusUnauthorized, rpcError{Code: 1501, Message: "Not authorized: Not derived from master"})
		return
	}
	var params json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&params); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(http.StatusInternalServerError, map[string]any{"code": nil, "message": "Could not parse request body: " + err.Error()})
		return
	}
	if len(params) == 0 {
		params = json.RawMessage(`{}`)
	}
	result, rerr := f.dispatch(r.Context(), method, params)
	if rerr != nil && rerr.Data == errDrop {
		panic(http.ErrAbortHandler)
	}
	if rerr != nil {
		status := http.StatusInternalServerError
		if rerr.Code == codeMethodNotFound {
			status = http.StatusNotFound
		}
		writeJSON(status, rerr)
		return
	}
	writeJSON(http.StatusCreated, result)
}
