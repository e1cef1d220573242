package cln

import (
	"strings"

	"github.com/l402kit/l402kit/backend"
)

// Core Lightning error codes (common/jsonrpc_errors.h) the adapter tells apart.
const (
	codeInvalidRequest        = -32600
	codeMethodNotFound        = -32601
	codeInvalidParams         = -32602
	codePluginError           = -32700 // cln_plugin's code for a plugin method's error
	codeLightningd            = -1
	codePluginTerminated      = -4
	codeShutdown              = -5
	codePayFirst              = 200
	codePayInProgress         = 200
	codeDestPermFail          = 203
	codeRouteNotFound         = 205
	codeInvoiceExpired        = 207
	codeXpayAlreadyPaid       = 219
	codePayLast               = 299
	codeLabelExists           = 900
	codePreimageExists        = 901
	codeExpiredDuringWait     = 903
	codeWaitTimedOut          = 904
	codeInvoiceNotFound       = 905
	codeInvoiceStatusMismatch = 906
	codeRuneNotAuthorized     = 1501
	codeRuneNotPermitted      = 1502
	codeRuneBlacklisted       = 1503
)

// classify maps a Core Lightning error to a backend sentinel.
func classify(method string, e *RPCError) error {
	msg := strings.ToLower(e.Message)
	switch {
	case e.Code == codeMethodNotFound:
		return backend.ErrUnsupported
	case e.Code == codeInvalidParams || e.Code == codeInvalidRequest:
		return backend.ErrInvalid
	case e.Code == codeShutdown || e.Code == codePluginTerminated:
		return backend.ErrUnavailable
	case e.Code == codeLabelExists || e.Code == codePreimageExists:
		return backend.ErrAlreadyExists
	case e.Code == codeInvoiceNotFound:
		return backend.ErrNotFound
	case e.Code >= codeRuneNotAuthorized && e.Code <= codeRuneBlacklisted:
		return backend.ErrInvalid
	case e.Code >= codePayFirst && e.Code <= codePayLast:
		return backend.ErrPaymentFailed
	case e.Code == codePluginError:
		// The hold plugin reports everything with one code; its messages
		// are all we have.
		switch {
		case strings.Contains(msg, "not found"):
			return backend.ErrNotFound
		case strings.Contains(msg, "unique constraint") || strings.Contains(msg, "duplicate key"):
			return backend.ErrAlreadyExists
		}
		return backend.ErrInvalid
	case e.Code == 0 && e.HTTPStatus != 0:
		// CLNRest itself refused, without a node code.
		switch {
		case e.HTTPStatus == 401 || e.HTTPStatus == 403:
			return backend.ErrInvalid
		case e.HTTPStatus == 404:
			return backend.ErrUnsupported
		case e.HTTPStatus >= 500:
			return backend.ErrUnavailable
		}
		return backend.ErrInvalid
	case strings.Contains(msg, "not found") || strings.Contains(msg, "unknown invoice"):
		return backend.ErrNotFound
	case method == "pay" || method == "xpay":
		return backend.ErrPaymentFailed
	}
	return backend.ErrInvalid
}
