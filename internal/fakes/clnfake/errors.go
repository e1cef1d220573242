package clnfake

import (
	"fmt"
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

// nodeError turns a memory node failure into lightningd's catch-all error.
func nodeError(err error) *rpcError {
	return errorf(codeLightningd, "%v", err)
}
