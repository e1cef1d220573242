package nwc

import (
	"errors"
	"fmt"

	"github.com/l402kit/l402kit/backend"
)

// codeSentinel gives each NIP-47 error code its one backend sentinel. Codes
// that wallets send beyond the NIP (Alby Hub's BAD_REQUEST and EXPIRED) are
// mapped too; any other code is ErrUnavailable, as OTHER is.
var codeSentinel = map[string]error{
	// Retry in a few seconds, as the NIP says.
	CodeRateLimited: backend.ErrUnavailable,
	// The wallet does not do this at all.
	CodeNotImplemented: backend.ErrUnsupported,
	// The payment was refused before it started: no money moved.
	CodeInsufficientBalance: backend.ErrPaymentFailed,
	CodeQuotaExceeded:       backend.ErrPaymentFailed,
	// This connection is not allowed the method: withheld by the wallet.
	CodeRestricted: backend.ErrUnsupported,
	// No wallet behind this key: a configuration mistake retrying cannot
	// fix (as a wrong password is for the HTTP adapters).
	CodeUnauthorized: backend.ErrInvalid,
	// The wallet failed; PayInvoice never takes this at its word (see
	// driver.PayInvoice), since Alby Hub answers real payment failures
	// with INTERNAL too.
	CodeInternal:              backend.ErrUnavailable,
	CodeUnsupportedEncryption: backend.ErrUnsupported,
	CodePaymentFailed:         backend.ErrPaymentFailed,
	CodeNotFound:              backend.ErrNotFound,
	CodeOther:                 backend.ErrUnavailable,
	"BAD_REQUEST":             backend.ErrInvalid,
	"EXPIRED":                 backend.ErrPaymentFailed,
}

// WalletError is an error answer of the wallet service. It matches the one
// backend sentinel its code maps to.
type WalletError struct {
	Method  string
	Code    string
	Message string
}

func (e *WalletError) Error() string {
	return fmt.Sprintf("nwc: %s: wallet answered %s: %s", e.Method, e.Code, e.Message)
}

// Unwrap returns the code's sentinel.
func (e *WalletError) Unwrap() error {
	if s, ok := codeSentinel[e.Code]; ok {
		return s
	}
	return backend.ErrUnavailable
}

// Sentinel returns the backend sentinel a NIP-47 error code maps to.
func Sentinel(code string) error { return (&WalletError{Code: code}).Unwrap() }

// codeOf names the NIP-47 code for a backend error, as Alby Hub does:
// NOT_FOUND for an unknown invoice, INTERNAL (with the node's text) for
// everything else, including failed payments and duplicate hashes.
func codeOf(err error) *responseError {
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return &responseError{CodeNotFound, err.Error()}
	case errors.Is(err, backend.ErrUnsupported):
		return &responseError{CodeNotImplemented, err.Error()}
	}
	return &responseError{CodeInternal, err.Error()}
}
