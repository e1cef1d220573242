package clnfake

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sort"
)

// methodUsage is help's text for each method, as lightningd prints it.
var methodUsage = map[string]string{
	"getinfo":       "getinfo",
	"help":          "help [command]",
	"invoice":       "invoice amount_msat label description [expiry] [fallbacks] [preimage] [exposeprivatechannels] [cltv] [deschashonly]",
	"listinvoices":  "listinvoices [label] [invstring] [payment_hash] [offer_id] [index] [start] [limit]",
	"waitinvoice":   "waitinvoice label",
	"listpays":      "listpays [bolt11] [payment_hash] [status] [index] [start] [limit]",
	"listsendpays":  "listsendpays [bolt11] [payment_hash] [status] [index] [start] [limit]",
	"signinvoice":   "signinvoice invstring",
	"createinvoice": "createinvoice invstring label preimage",
}

// holdUsage is the hold plugin's methods (BoltzExchange/hold src/main.rs).
var holdUsage = map[string]string{
	"holdinvoice":       "holdinvoice payment_hash amount",
	"injectholdinvoice": "injectholdinvoice invoice",
	"listholdinvoices":  "listholdinvoices [payment_hash] [bolt11]",
	"settleholdinvoice": "settleholdinvoice preimage",
	"cancelholdinvoice": "cancelholdinvoice payment_hash",
}

func (f *Fake) usage(method string) (string, bool) {
	if u, ok := methodUsage[method]; ok {
		return u, true
	}
	if u, ok := f.payUsage()[method]; ok {
		return u, true
	}
	if u, ok := f.offerUsage()[method]; ok {
		return u, true
	}
	if f.cfg.HoldPlugin {
		u, ok := holdUsage[method]
		return u, ok
	}
	return "", false
}

func (f *Fake) dispatch(ctx context.Context, method string, params json.RawMessage) (any, *rpcError) {
	f.log.Debug("clnfake: call", "method", method, "params", string(params))
	f.state.mu.Lock()
	f.state.calls[method]++
	f.state.mu.Unlock()
	if _, ok := f.usage(method); !ok {
		return nil, errorf(codeMethodNotFound, "Unknown command '%s'", method)
	}
	switch method {
	case "getinfo":
		return f.getinfo(ctx, params)
	case "help":
		return f.help(params)
	case "invoice":
		return f.invoice(ctx, params)
	case "listinvoices":
		return f.listinvoices(ctx, params)
	case "waitinvoice":
		return f.waitinvoice(ctx, params)
	case "pay":
		return f.pay(ctx, params)
	case "xpay":
		return f.xpay(ctx, params)
	case "listpays":
		return f.listpays(params)
	case "listsendpays":
		return f.listsendpays(params)
	case "offer":
		return f.offer(ctx, params)
	case "listoffers":
		return f.listoffers(ctx, params)
	case "disableoffer":
		return f.disableoffer(ctx, params)
	case "fetchinvoice":
		return f.fetchinvoice(ctx, params)
	case "signinvoice":
		return f.signinvoice(ctx, params)
	case "createinvoice":
		return f.createinvoice(ctx, params)
	case "holdinvoice":
		return f.holdinvoice(ctx, params)
	case "injectholdinvoice":
		return f.injectholdinvoice(ctx, params)
	case "listholdinvoices":
		return f.listholdinvoices(ctx, params)
	case "settleholdinvoice":
		return f.settleholdinvoice(ctx, params)
	case "cancelholdinvoice":
		return f.cancelholdinvoice(ctx, params)
	}
	return nil, errorf(codeMethodNotFound, "Unknown command '%s'", method)
}

func (f *Fake) getinfo(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	if _, rerr := bind(params, nil, 0); rerr != nil {
		return nil, rerr
	}
	info, err := f.b.Info(ctx)
	if err != nil {
		return nil, nodeError(err)
	}
	network := info.Network
	if network == "mainnet" {
		network = "bitcoin" // lightningd's name for mainnet
	}
	return map[string]any{
		"id":                    info.NodeID,
		"alias":                 info.Alias,
		"color":                 info.NodeID[2:8],
		"num_peers":             0,
		"num_pending_channels":  0,
		"num_active_channels":   0,
		"num_inactive_channels": 0,
		"address":               []any{},
		"binding":               []any{},
		"version":               f.version,
		"blockheight":           info.BlockHeight,
		"network":               network,
		"fees_collected_msat":   0,
		"lightning-dir":         filepath.Dir(f.cfg.SocketPath),
		"our_features": map[string]string{
			"init": "08a0880a8a59a1", "node": "88a0880a8a59a1", "channel": "", "invoice": "02000002024100",
		},
	}, nil
}

func (f *Fake) help(params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"command"}, 0)
	if rerr != nil {
		return nil, rerr
	}
	cmd, rerr := str(p, "command")
	if rerr != nil {
		return nil, rerr
	}
	type entry struct {
		Command string `json:"command"`
	}
	var out []entry
	if cmd != "" {
		u, ok := f.usage(cmd)
		if !ok {
			return nil, errorf(codeMethodNotFound, "Unknown command %s", cmd)
		}
		out = append(out, entry{u})
	} else {
		for _, u := range methodUsage {
			out = append(out, entry{u})
		}
		for _, u := range f.payUsage() {
			out = append(out, entry{u})
		}
		for _, u := range f.offerUsage() {
			out = append(out, entry{u})
		}
		if f.cfg.HoldPlugin {
			for _, u := range holdUsage {
				out = append(out, entry{u})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Command < out[j].Command })
	}
	return map[string]any{"help": out, "format-hint": "simple"}, nil
}
