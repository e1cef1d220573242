package lndrest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

var (
	// ErrGRPCPort is wrapped when the address answers with gRPC: the URL
	// names LND's rpclisten port instead of its restlisten port.
	ErrGRPCPort = errors.New("not LND's REST port")
	// ErrNotTLS is wrapped when the port does not speak TLS (a plain HTTP
	// server, or LND with --no-rest-tls).
	ErrNotTLS = errors.New("the port does not speak TLS")
	// ErrBadCert is wrapped when the configured certificate cannot be
	// parsed.
	ErrBadCert = errors.New("bad TLS certificate")
)

// Code is a gRPC status code as LND's REST gateway reports it in "code".
type Code int

// The codes LND's answers carry that callers tell apart.
const (
	CodeCanceled         Code = 1
	CodeUnknown          Code = 2 // most of LND's own errors: only the text tells
	CodeInvalidArgument  Code = 3
	CodeDeadlineExceeded Code = 4
	CodeNotFound         Code = 5
	CodeAlreadyExists    Code = 6
	CodePermissionDenied Code = 7
	CodeAborted          Code = 10
	CodeOutOfRange       Code = 11
	CodeUnimplemented    Code = 12
	CodeUnavailable      Code = 14
	CodeUnauthenticated  Code = 16
)

// Error is an error answer of the node: LND's text and the gRPC code its
// gateway reports, with the HTTP status (0 inside a stream, where the
// status line was sent with the first message).
type Error struct {
	Call       string // "POST /v1/invoices"
	HTTPStatus int
	Code       Code
	Message    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (code %d)", e.Call, e.Message, e.Code)
}

// NoRoute reports whether the gateway has no such path: the node was built
// without the sub-server the call belongs to (invoicesrpc, routerrpc), or
// is not LND.
func (e *Error) NoRoute() bool {
	return e.HTTPStatus == http.StatusNotFound && e.Code == CodeNotFound && e.Message == http.StatusText(http.StatusNotFound) ||
		e.HTTPStatus == http.StatusMethodNotAllowed
}

// status is grpc-gateway's error body (google.rpc.Status).
type status struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (s *status) err(httpStatus int, call string) *Error {
	return &Error{Call: call, HTTPStatus: httpStatus, Code: s.Code, Message: s.Message}
}

// errorAnswer reads a non-200 answer: grpc-gateway's status body, the
// same inside a stream's {"error": ...} when a stream fails before its
// first message, or whatever else a server in front of LND sent.
func errorAnswer(call string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var msg struct {
		status
		Error *status `json:"error"`
	}
	if json.Unmarshal(body, &msg) == nil {
		if msg.Error != nil {
			return msg.Error.err(resp.StatusCode, call)
		}
		if msg.Message != "" || msg.Code != 0 {
			return msg.status.err(resp.StatusCode, call)
		}
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 256 {
		text = text[:256] + "…"
	}
	if text == "" {
		text = resp.Status
	}
	// Not the gateway's answer: a server in front of LND, or not LND.
	code := CodeUnknown
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		code = CodeUnauthenticated
	case http.StatusForbidden:
		code = CodePermissionDenied
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		code = CodeUnimplemented
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		code = CodeUnavailable
	}
	return &Error{Call: call, HTTPStatus: resp.StatusCode, Code: code, Message: text}
}
