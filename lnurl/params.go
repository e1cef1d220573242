package lnurl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// callbackMode is what a Client has learned of its service's callback.
type callbackMode int

const (
	// callbackUnknown: one fetch so far; its parameters serve one invoice.
	callbackUnknown callbackMode = iota
	// callbackStatic: two fetches gave the same callback; parameters are
	// reused for ParamsTTL.
	callbackStatic
	// callbackPerFetch: the callback changed between fetches (BTCPay binds
	// each to one store invoice: it answers again with the same invoice,
	// cancels it for another amount, and refuses once it is paid), or
	// repeated a payment hash; every invoice gets parameters of its own.
	callbackPerFetch
)

// paramsForInvoice returns pay parameters for one invoice: those cached,
// when the service's callback is known to be static and they are younger
// than ParamsTTL, or those New fetched if no invoice used them yet; else
// (and always when fresh) a fetch of its own.
func (c *Client) paramsForInvoice(ctx context.Context, fresh bool) (*payParams, error) {
	c.mu.Lock()
	if p := c.params; !fresh && p != nil && time.Since(c.paramsAt) < c.cfg.ParamsTTL {
		switch {
		case c.callbacks == callbackStatic:
			c.mu.Unlock()
			return p, nil
		case !c.paramsUsed:
			// Fetched by New or Ping and not used yet: good for one
			// invoice whatever the callback's kind.
			c.paramsUsed = true
			c.mu.Unlock()
			return p, nil
		}
	}
	static := c.callbacks == callbackStatic && !fresh
	c.mu.Unlock()
	return c.fetchParams(ctx, static, true)
}

// fetchParams fetches and checks the pay parameters and learns from them
// whether the callback stays the same. With reuse (a static callback), one
// caller fetches at a time and the others take what it fetched; otherwise
// each caller gets parameters of its own. forInvoice marks them used.
func (c *Client) fetchParams(ctx context.Context, reuse, forInvoice bool) (*payParams, error) {
	if reuse {
		select {
		case c.fetch <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("lnurl: pay parameters: %w", ctx.Err())
		}
		defer func() { <-c.fetch }()
		c.mu.Lock()
		p := c.params
		if p != nil && c.callbacks == callbackStatic && time.Since(c.paramsAt) < c.cfg.ParamsTTL {
			c.mu.Unlock()
			return p, nil // fetched by whoever held the turn before us
		}
		c.mu.Unlock()
	}
	var p payParams
	if err := c.getJSON(ctx, c.payURL, "pay parameters", &p); err != nil {
		return nil, err
	}
	if err := c.checkParams(&p); err != nil {
		return nil, fmt.Errorf("lnurl: %w: pay parameters from %s: %v", backend.ErrInvalid, c.payURL, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.lastCB == "" || c.callbacks == callbackPerFetch:
	case c.lastCB == p.Callback:
		c.callbacks = callbackStatic
	case c.callbacks == callbackStatic:
		// A static callback moved (the service was reconfigured): learn
		// its kind again from the next fetch.
		c.callbacks = callbackUnknown
	default:
		c.callbacks = callbackPerFetch
	}
	c.lastCB = p.Callback
	c.params, c.paramsAt, c.paramsUsed = &p, time.Now(), forInvoice
	return &p, nil
}

func (c *Client) forgetParams(p *payParams) {
	c.mu.Lock()
	if c.params == p {
		c.params = nil
	}
	c.mu.Unlock()
}

// checkParams holds pay parameters to LUD-06 step 3 (and LUD-16's
// identifier, when the Client was given an address).
func (c *Client) checkParams(p *payParams) error {
	if p.Tag != "payRequest" {
		return fmt.Errorf("tag %q, want \"payRequest\" (LUD-06)", p.Tag)
	}
	if _, err := checkURL(p.Callback, "callback", c.cfg.AllowHTTP); err != nil {
		return err
	}
	if p.MinSendable < 1 || p.MaxSendable < p.MinSendable {
		return fmt.Errorf("sendable range %d..%d msat is empty or below 1 msat", p.MinSendable, p.MaxSendable)
	}
	if p.Metadata == "" {
		return errors.New("no metadata")
	}
	byType, err := parseMetadata(p.Metadata)
	if err != nil {
		return err
	}
	if c.addr != nil {
		// LUD-16 asks the service to name the address in its metadata
		// and asks nothing of wallets, which do not check it: a
		// lightning address on a custom domain that redirects to, or
		// serves a copy of, its provider's document names the provider's
		// address. What binds the invoice to these parameters is the
		// description hash (sha256 of this metadata) and the amount,
		// both checked on every invoice.
		if id := metadataIdentifier(byType); id != c.addr.String() {
			c.log.Debug("lnurl: metadata names another identifier than the address asked for (an alias?)",
				"address", c.addr.String(), "identifier", id)
		}
	}
	return nil
}
