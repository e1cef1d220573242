package clnfake

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/l402kit/l402kit/backend"
)

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
