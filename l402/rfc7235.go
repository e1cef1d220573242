package l402

import (
	"fmt"
	"strings"
)

func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// rawChallenge is one challenge (or credentials) of RFC 7235 syntax.
type rawChallenge struct {
	scheme  string
	token68 string
	params  [][2]string // lower-cased names, in order
}

func (c rawChallenge) param(name string) (string, bool) {
	for _, p := range c.params {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}

// parseChallengeList reads a WWW-Authenticate (or Authorization) value as
// RFC 7235 lays it out: challenges separated by commas, each a scheme
// followed by a token68 or by comma-separated name=value parameters, values
// plain or quoted. A comma followed by a word that is not followed by "="
// starts the next challenge. What it could read before an error is
// returned with the error, so one odd challenge does not hide ours.
func parseChallengeList(s string) ([]rawChallenge, error) {
	p := &challengeParser{s: s}
	var out []rawChallenge
	for {
		p.skip(" \t,")
		if p.eof() {
			return out, nil
		}
		scheme := p.token()
		if scheme == "" {
			return out, fmt.Errorf("%w: bad character at offset %d of an authentication header", ErrMalformed, p.i)
		}
		ch := rawChallenge{scheme: scheme}
		p.skip(" \t")
		for !p.eof() && p.s[p.i] != ',' {
			start := p.i
			name := p.token()
			p.skip(" \t")
			if name == "" || p.eof() || p.s[p.i] != '=' || p.token68End(start) {
				// token68 credentials: "Bearer abc+/=="
				p.i = start
				ch.token68 = p.until(" \t,")
				p.skip(" \t")
				break
			}
			p.i++ // '='
			p.skip(" \t")
			val, err := p.value()
			if err != nil {
				return out, err
			}
			ch.params = append(ch.params, [2]string{strings.ToLower(name), val})
			p.skip(" \t")
			if p.eof() || p.s[p.i] != ',' {
				if !p.eof() {
					return out, fmt.Errorf("%w: expected a comma at offset %d of an authentication header", ErrMalformed, p.i)
				}
				break
			}
			// Another parameter, or the next challenge?
			save := p.i
			p.skip(" \t,")
			look := p.i
			p.token()
			p.skip(" \t")
			isParam := !p.eof() && p.s[p.i] == '=' && !p.token68End(look)
			if isParam {
				p.i = look
				continue
			}
			p.i = save
			break
		}
		out = append(out, ch)
	}
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) eof() bool { return p.i >= len(p.s) }

func (p *challengeParser) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *challengeParser) until(set string) string {
	start := p.i
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) < 0 {
		p.i++
	}
	return p.s[start:p.i]
}

// token reads an RFC 7230 token.
func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// token68End reports whether the "=" at the parser's position, right after
// a word begun at start, is only base64 padding: a run of "=" directly
// after the word and followed by nothing but white space up to a comma or
// the end. "name=value" and "name = value" are parameters.
func (p *challengeParser) token68End(start int) bool {
	if p.i == start || !isTchar(p.s[p.i-1]) {
		return false // white space between the word and "="
	}
	j := p.i
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	if j == p.i {
		return false
	}
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	return j == len(p.s) || p.s[j] == ','
}

// value reads a parameter value: a quoted string (with backslash escapes)
// or a bare word up to a comma or white space.
func (p *challengeParser) value() (string, error) {
	if p.eof() || p.s[p.i] != '"' {
		return p.until(" \t,"), nil
	}
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '"':
			p.i++
			return b.String(), nil
		case '\\':
			p.i++
			if p.i >= len(p.s) {
				return "", fmt.Errorf("%w: unterminated quoted string in an authentication header", ErrMalformed)
			}
			c = p.s[p.i]
		}
		b.WriteByte(c)
		p.i++
	}
	return "", fmt.Errorf("%w: unterminated quoted string in an authentication header", ErrMalformed)
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
