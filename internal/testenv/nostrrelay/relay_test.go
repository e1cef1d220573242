package nostrrelay

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	nostr "github.com/nbd-wtf/go-nostr"
)

// client is a bare NIP-01 client over a raw socket, so the tests see
// exactly what the relay sends.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, r *Relay) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, r.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &client{t: t, ws: ws}
}

func (c *client) send(v ...any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// next reads one message; ok is false when none arrives within d.
func (c *client) next(d time.Duration) ([]json.RawMessage, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, false
	}
	var m []json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("relay sent %s: %v", b, err)
	}
	return m, true
}

func (c *client) must() (string, []json.RawMessage) {
	c.t.Helper()
	m, ok := c.next(10 * time.Second)
	if !ok {
		c.t.Fatal("no message from the relay")
	}
	var label string
	json.Unmarshal(m[0], &label)
	return label, m
}

// ok publishes ev and returns the relay's OK verdict.
func (c *client) ok(ev nostr.Event) (bool, string) {
	c.t.Helper()
	c.send("EVENT", ev)
	label, m := c.must()
	if label != "OK" || len(m) != 4 {
		c.t.Fatalf("want OK, got %s", m)
	}
	var id, msg string
	var accepted bool
	json.Unmarshal(m[1], &id)
	json.Unmarshal(m[2], &accepted)
	json.Unmarshal(m[3], &msg)
	if id != ev.ID {
		c.t.Fatalf("OK for %s, published %s", id, ev.ID)
	}
	return accepted, msg
}

// req subscribes and returns the stored events up to EOSE.
func (c *client) req(id string, f ...nostr.Filter) []nostr.Event {
	c.t.Helper()
	args := []any{"REQ", id}
	for _, x := range f {
		args = append(args, x)
	}
	c.send(args...)
	var out []nostr.Event
	for {
		label, m := c.must()
		switch label {
		case "EVENT":
			var ev nostr.Event
			json.Unmarshal(m[2], &ev)
			out = append(out, ev)
		case "EOSE":
			return out
		default:
			c.t.Fatalf("before EOSE: %s", m)
		}
	}
}

func event(t *testing.T, sk string, kind int, at nostr.Timestamp, tags nostr.Tags, content string) nostr.Event {
	t.Helper()
	ev := nostr.Event{Kind: kind, CreatedAt: at, Tags: tags, Content: content}
	if err := ev.Sign(sk); err != nil {
		t.Fatal(err)
	}
	return ev
}

func start(t *testing.T) *Relay {
	t.Helper()
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRefusesForgedEvents(t *testing.T) {
	r := start(t)
	c := dial(t, r)
	sk := nostr.GeneratePrivateKey()
	ev := event(t, sk, 1, nostr.Now(), nil, "hello")

	bad := ev
	bad.Content = "changed after signing"
	if ok, msg := c.ok(bad); ok {
		t.Fatalf("relay took an event whose id does not match: %q", msg)
	}
	bad = ev
	sig := []byte(bad.Sig)
	if sig[10] == '0' {
		sig[10] = '1'
	} else {
		sig[10] = '0'
	}
	bad.Sig = string(sig)
	if ok, msg := c.ok(bad); ok {
		t.Fatalf("relay took an event with a broken signature: %q", msg)
	}
	other := nostr.GeneratePrivateKey()
	forged := ev
	forged.PubKey, _ = nostr.GetPublicKey(other)
	forged.ID = forged.GetID()
	if ok, _ := c.ok(forged); ok {
		t.Fatal("relay took an event signed by another key than its pubkey")
	}
	expired := event(t, sk, 1, nostr.Now(), nostr.Tags{{"expiration", strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)}}, "old")
	if ok, _ := c.ok(expired); ok {
		t.Fatal("relay took an expired event")
	}
	if ok, msg := c.ok(ev); !ok {
		t.Fatalf("relay refused a valid event: %s", msg)
	}
	if ok, msg := c.ok(ev); !ok || msg == "" {
		t.Fatalf("a repeated event should be OK with a duplicate: message, got %v %q", ok, msg)
	}
	if got := c.req("all", nostr.Filter{}); len(got) != 1 || got[0].ID != ev.ID {
		t.Fatalf("stored %v, want only the valid event", got)
	}
}

func TestFiltersAndStorage(t *testing.T) {
	r := start(t)
	c := dial(t, r)
	alice, bob := nostr.GeneratePrivateKey(), nostr.GeneratePrivateKey()
	alicePub, _ := nostr.GetPublicKey(alice)
	bobPub, _ := nostr.GetPublicKey(bob)
	now := nostr.Now()

	a1 := event(t, alice, 1, now-30, nostr.Tags{{"p", bobPub}}, "a1")
	a2 := event(t, alice, 1, now-20, nil, "a2")
	b1 := event(t, bob, 1, now-10, nostr.Tags{{"e", a1.ID}}, "b1")
	eph := event(t, alice, 23194, now, nostr.Tags{{"p", bobPub}}, "ephemeral")
	info1 := event(t, bob, 13194, now-5, nil, "pay_invoice")
	info2 := event(t, bob, 13194, now-1, nil, "pay_invoice make_invoice")
	for _, ev := range []nostr.Event{a1, a2, b1, eph, info1, info2} {
		if ok, msg := c.ok(ev); !ok {
			t.Fatalf("refused %s: %s", ev.Content, msg)
		}
	}
	ids := func(evs []nostr.Event) (out []string) {
		for _, e := range evs {
			out = append(out, e.Content)
		}
		return out
	}
	cases := []struct {
		f    nostr.Filter
		want []string
	}{
		{nostr.Filter{Authors: []string{alicePub}}, []string{"a1", "a2"}},
		{nostr.Filter{Kinds: []int{1}, Tags: nostr.TagMap{"p": {bobPub}}}, []string{"a1"}},
		{nostr.Filter{Tags: nostr.TagMap{"e": {a1.ID}}}, []string{"b1"}},
		{nostr.Filter{Kinds: []int{1}, Since: ptr(now - 25)}, []string{"a2", "b1"}},
		{nostr.Filter{Kinds: []int{1}, Limit: 1}, []string{"b1"}},
		{nostr.Filter{Kinds: []int{23194}}, nil},                                  // ephemeral: never stored
		{nostr.Filter{Kinds: []int{13194}}, []string{"pay_invoice make_invoice"}}, // replaceable: newest only
	}
	for i, tc := range cases {
		got := ids(c.req("s"+strconv.Itoa(i), tc.f))
		if len(got) != len(tc.want) {
			t.Errorf("filter %d: got %v, want %v", i, got, tc.want)
			continue
		}
		for j := range got {
			if got[j] != tc.want[j] {
				t.Errorf("filter %d: got %v, want %v", i, got, tc.want)
			}
		}
	}
}

func ptr(t nostr.Timestamp) *nostr.Timestamp { return &t }

func TestLiveForwardAndFaults(t *testing.T) {
	r := start(t)
	pub, sub := dial(t, r), dial(t, r)
	sk := nostr.GeneratePrivateKey()
	skPub, _ := nostr.GetPublicKey(sk)
	if got := sub.req("live", nostr.Filter{Kinds: []int{23195}, Authors: []string{skPub}}); len(got) != 0 {
		t.Fatalf("stored: %v", got)
	}
	recv := func() (nostr.Event, bool) {
		m, ok := sub.next(2 * time.Second)
		if !ok {
			return nostr.Event{}, false
		}
		var ev nostr.Event
		json.Unmarshal(m[2], &ev)
		return ev, true
	}

	ev := event(t, sk, 23195, nostr.Now(), nil, "live")
	pub.ok(ev)
	if got, ok := recv(); !ok || got.ID != ev.ID {
		t.Fatalf("live event not forwarded: %v %v", got, ok)
	}
	other := event(t, sk, 1, nostr.Now(), nil, "not subscribed")
	pub.ok(other)

	r.SetFault(func(e *nostr.Event) Fault { return Fault{Drop: e.Content == "drop"} })
	dropped := event(t, sk, 23195, nostr.Now(), nil, "drop")
	if ok, _ := pub.ok(dropped); !ok {
		t.Fatal("a dropping relay still acknowledges")
	}
	kept := event(t, sk, 23195, nostr.Now(), nil, "kept")
	pub.ok(kept)
	// The subscription sees "kept" and nothing before it: neither the
	// kind 1 event it did not ask for nor the dropped one.
	if got, ok := recv(); !ok || got.ID != kept.ID {
		t.Fatalf("after a drop: got %q %v, want kept", got.Content, ok)
	}

	r.SetFault(func(*nostr.Event) Fault { return Fault{Delay: 50 * time.Millisecond} })
	late := event(t, sk, 23195, nostr.Now(), nil, "late")
	pub.ok(late)
	if got, ok := recv(); !ok || got.ID != late.ID {
		t.Fatalf("delayed event not forwarded: %v", ok)
	}

	r.SetFault(func(*nostr.Event) Fault { return Fault{Disconnect: true} })
	cut := event(t, sk, 1, nostr.Now(), nil, "cut")
	pub.ok(cut)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := sub.ws.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("subscriber still connected after a disconnect fault: %v", err)
	}
	if len(r.Seen()) != 6 {
		t.Fatalf("Seen has %d events, want 6", len(r.Seen()))
	}
}
