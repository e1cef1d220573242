package cln

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/l402kit/l402kit/backend"
)

// transport carries one Core Lightning RPC call: the unix socket speaks
// JSON-RPC 2.0 to lightningd, CLNRest wraps the same methods in HTTP. Both
// return the method's result unchanged, so the adapter decodes one set of
// types whichever way it reached the node.
type transport interface {
	// call runs method with params (a JSON object) and decodes its result
	// into result. A node error comes back as *RPCError; a node that cannot
	// be reached as an error wrapping backend.ErrUnavailable.
	call(ctx context.Context, method string, params, result any) error
	// String names the endpoint for messages, without secrets.
	String() string
	// close releases idle connections.
	close()
}

// errNotSent marks a call that failed before its request could reach the
// node (the connection could not be made): a payment that did not start.
var errNotSent = errors.New("request not sent")

// RPCError is an error object returned by Core Lightning (or a plugin) for a
// call, as JSON-RPC 2.0 and CLNRest carry it. Adapter errors wrap it, so
// errors.As gives callers the node's code and data.
type RPCError struct {
	// Code is lightningd's error code (common/jsonrpc_errors.h), or the
	// plugin's; zero when CLNRest refused the call without one.
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
	// HTTPStatus is CLNRest's status code; zero over the unix socket.
	HTTPStatus int `json:"-"`
}

func (e *RPCError) Error() string {
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("code %d (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
	}
	return fmt.Sprintf("code %d: %s", e.Code, e.Message)
}

// socketTransport calls lightningd over its unix socket, one connection per
// call. lightning-cli does the same. A connection per call costs a connect
// on a local socket (tens of microseconds) and buys three things a shared
// connection would have to build: a blocking waitinvoice never holds up other
// calls, cancelling a call is closing its connection (lightningd then drops
// the command), and a restarted lightningd needs no reconnection logic.
type socketTransport struct {
	path string
	ids  atomic.Uint64
}

type rpcRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

func (t *socketTransport) String() string { return "unix:" + t.path }

func (t *socketTransport) close() {}

func (t *socketTransport) call(ctx context.Context, method string, params, result any) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", t.path)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w: %v", backend.ErrUnavailable, errNotSent, err)
	}
	defer conn.Close()
	// Closing the connection is how a call is abandoned: it unblocks our
	// read and tells lightningd the caller has gone.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	id := t.ids.Add(1)
	req, err := marshal(rpcRequest{JSONRPC: "2.0", ID: id, Method: method, Params: params})
	if err != nil {
		return fmt.Errorf("%w: encode params: %v", backend.ErrInvalid, err)
	}
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return t.ioError(ctx, err)
	}
	// lightningd writes each response as one JSON object (followed by
	// blank lines); a streaming decoder needs no framing beyond that.
	dec := json.NewDecoder(conn)
	for {
		var resp rpcResponse
		if err := dec.Decode(&resp); err != nil {
			return t.ioError(ctx, err)
		}
		if string(resp.ID) != fmt.Sprint(id) {
			continue // a notification or someone else's reply: not ours
		}
		if resp.Error != nil {
			return resp.Error
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("decode %s result: %w", method, err)
		}
		return nil
	}
}

func (t *socketTransport) ioError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w: lightningd closed the connection: %v", backend.ErrUnavailable, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("%w: %v", backend.ErrUnavailable, err)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed reply from lightningd: %w", err)
	}
	return fmt.Errorf("%w: %v", backend.ErrUnavailable, err)
}

// restTransport calls CLNRest: POST /v1/<method> with the params as a JSON
// object and the rune in the Rune header. CLNRest answers 201 with the
// method's result, and an error object with 4xx/5xx.
type restTransport struct {
	base   string // scheme://host:port, no trailing slash
	rune   string
	client HTTPDoer
}

func (t *restTransport) String() string { return t.base }

func (t *restTransport) close() {
	if c, ok := t.client.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *restTransport) call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	body, err := marshal(params)
	if err != nil {
		return fmt.Errorf("%w: encode params: %v", backend.ErrInvalid, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/v1/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", backend.ErrInvalid, err)
	}
	req.Header.Set("Rune", t.rune)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w: %w: %v", backend.ErrUnavailable, errNotSent, redactURLError(err))
		}
		return fmt.Errorf("%w: %v", backend.ErrUnavailable, redactURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: read CLNRest reply: %v", backend.ErrUnavailable, err)
	}
	if resp.StatusCode/100 != 2 {
		rerr := &RPCError{HTTPStatus: resp.StatusCode}
		if json.Unmarshal(data, rerr) != nil || rerr.Message == "" {
			rerr.Message = strings.TrimSpace(string(data))
			if len(rerr.Message) > 200 {
				rerr.Message = rerr.Message[:200]
			}
		}
		return rerr
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(data, result); err != nil {
		return fmt.Errorf("decode %s result: %w", method, err)
	}
	return nil
}

// redactURLError drops the URL from an HTTP client error, keeping the
// operation's cause; messages stay short and never carry query strings.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// marshal encodes without Go's HTML escaping: lightningd's string
// parameters (descriptions among them) refuse \u escapes, and Go's
// encoder writes <, > and & as \u003c, \u003e and \u0026.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// checkDescription refuses text lightningd cannot receive as a string
// parameter: it unescapes only \" \\ \/ \b \f \n \r \t and refuses \u,
// which JSON needs for the other control characters and Go's encoder uses
// for U+2028, U+2029 and invalid UTF-8.
func checkDescription(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: description is not UTF-8", backend.ErrInvalid)
	}
	for _, r := range s {
		if (r < 0x20 && !strings.ContainsRune("\b\f\n\r\t", r)) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%w: description has character %U, which Core Lightning's JSON-RPC cannot take (it refuses \\u escapes)", backend.ErrInvalid, r)
		}
	}
	return nil
}
