// Command l402proxy is the reference L402 reverse proxy: it puts a Lightning
// price on HTTP routes, issuing invoices from the backend its URL names.
//
// With no flags it listens on 127.0.0.1:8402 on the embedded memory backend
// in front of a built-in demo upstream, and prints curl lines that walk
// through the 402 flow. Every flag can come from the environment instead
// (L402_LISTEN, L402_BACKEND, L402_UPSTREAM, L402_PRICE, L402_CONFIG,
// L402_FORWARD_AUTH, L402_TRUSTED_FORWARDERS, L402_STATE, L402_NEW_STATE,
// L402_INSTANCE;
// L402_STATE_SCHEMA picks the PostgreSQL schema); keep
// backend URLs and database passwords there, or point them at env:/file:
// secrets, rather than on a command line.
//
// "l402proxy state check [--state PATH]" proves the embedded store's file
// whole without starting the proxy.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/version"
	"github.com/l402kit/l402kit/lnurl"
	"github.com/l402kit/l402kit/memory"

	// Every adapter registers its URL scheme.
	_ "github.com/l402kit/l402kit/cln"
	_ "github.com/l402kit/l402kit/eclair"
	_ "github.com/l402kit/l402kit/lnd"
	_ "github.com/l402kit/l402kit/nwc"
	_ "github.com/l402kit/l402kit/phoenixd"
	"github.com/l402kit/l402kit/proxy"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "l402proxy:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

type options struct {
	listen, backendURL, upstream, config string
	priceSat                             int64
	singleUse                            bool
	lnurlName, lnurlBaseURL              string
	forwardAuth                          string
	trustedForwarders                    []netip.Prefix
	server                               serverOptions
	transport                            proxy.TransportConfig
	pprof                                string
	forwardAuthCache                     time.Duration
	state, instance                      string
	schemes                              []string
	paymentSecret                        string
	tokenChallenges                      bool
	storedRootKeys                       bool
	publicOrigin, clientCertHeader       string
	newState                             bool
	version                              bool
	adminListen                          string
	healthzNodeInfo                      bool
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("l402proxy", flag.ContinueOnError)
	o := &options{}
	defPrice, err := strconv.ParseInt(env("L402_PRICE", "10"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("L402_PRICE: %w", err)
	}
	fs.StringVar(&o.listen, "listen", env("L402_LISTEN", "127.0.0.1:8402"), "address to listen on")
	fs.StringVar(&o.backendURL, "backend", env("L402_BACKEND", "memory://"), "Lightning backend URL (memory://, lnd://, cln://, clnrest://, eclair://, phoenixd://, lnurl://, nostr+walletconnect://)")
	fs.StringVar(&o.upstream, "upstream", env("L402_UPSTREAM", ""), "upstream URL to sell access to (default: the built-in demo upstream)")
	fs.Int64Var(&o.priceSat, "price", defPrice, "price in satoshis, for --upstream and the demo routes")
	fs.BoolVar(&o.singleUse, "single-use", false, "with --upstream: serve each token once")
	fs.StringVar(&o.config, "config", env("L402_CONFIG", ""), "YAML file with listen, backend and routes")
	fs.StringVar(&o.lnurlName, "lnurl-name", env("L402_LNURL_NAME", ""), "also serve the backend as the lightning address NAME@host (LNURL-pay, LUD-06/16/21)")
	fs.StringVar(&o.lnurlBaseURL, "lnurl-base-url", env("L402_LNURL_BASE_URL", ""), "with --lnurl-name: the public base URL wallets reach this proxy at (default http://LISTEN)")
	fs.StringVar(&o.forwardAuth, "forward-auth", env("L402_FORWARD_AUTH", "/l402/auth"), "path of the forward-auth endpoint for nginx auth_request, Traefik ForwardAuth, Caddy forward_auth (\"off\" to disable)")
	trusted := env("L402_TRUSTED_FORWARDERS", "127.0.0.0/8,::1")
	fs.StringVar(&trusted, "trusted-forwarders", trusted, "front servers whose X-Forwarded-For / X-Real-IP are believed: comma-separated addresses or CIDR prefixes, or none; the client is the right-most forwarded address that is not one of them")
	serverFlags(fs, &o.server)
	transportFlags(fs, &o.transport)
	fs.StringVar(&o.pprof, "pprof", env("L402_PPROF", ""), "serve Go's profiling endpoints (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off by default")
	defCache, err := time.ParseDuration(env("L402_FORWARD_AUTH_CACHE", "0s"))
	if err != nil {
		return nil, fmt.Errorf("L402_FORWARD_AUTH_CACHE: %w", err)
	}
	fs.DurationVar(&o.forwardAuthCache, "forward-auth-cache", defCache, "let a front server cache forward-auth grants this long at most, never past the token's expiry (nginx X-Accel-Expires; a revoked token passes until then); 0: never")
	fs.StringVar(&o.state, "state", env("L402_STATE", ""), "where sold tokens, spent single-use tokens and held payments are kept: a file path (embedded store; default $XDG_STATE_HOME/l402kit/state.db), postgres://... to share one database between several proxies, or memory (lost on exit)")
	fs.StringVar(&o.adminListen, "admin-listen", env("L402_ADMIN_LISTEN", ""), "serve /metrics and /healthz with the node's identity on this address of their own (e.g. 127.0.0.1:9402); /metrics then leaves the public listener")
	nodeInfo, _ := strconv.ParseBool(env("L402_HEALTHZ_NODE_INFO", "false"))
	fs.BoolVar(&o.healthzNodeInfo, "healthz-node-info", nodeInfo, "show the node's identity (id, alias) on the public /healthz too; off by default: it tells anyone which node takes the payments")
	newState, _ := strconv.ParseBool(env("L402_NEW_STATE", "false"))
	fs.BoolVar(&o.newState, "new-state", newState, "let the embedded store start empty where one existed before (its file is missing or 0 bytes while its marker FILE.id remains); never needed on a first start")
	fs.StringVar(&o.instance, "instance", env("L402_INSTANCE", ""), "this proxy's name among those sharing a state database, the same across restarts (default host name and listen address)")
	fs.BoolVar(&o.version, "version", false, "print the version, the commit and the build settings, then exit")
	schemes := env("L402_SCHEMES", "L402")
	fs.StringVar(&schemes, "schemes", schemes, "schemes the routes offer unless they name theirs: L402, Payment (the Payment scheme's Lightning charge) or L402,Payment; the demo's /paid/ offers both")
	fs.StringVar(&o.paymentSecret, "payment-secret", env("L402_PAYMENT_SECRET", ""), "key of Payment challenge ids (32 bytes or more; env:NAME or file:PATH), shared by every proxy sharing the state; default random per process")
	tokenChallenges, _ := strconv.ParseBool(env("L402_TOKEN_CHALLENGES", "false"))
	fs.BoolVar(&o.tokenChallenges, "token-challenges", tokenChallenges, "also send each L402 challenge in bLIP-26's form, version=\"0\", token=\"...\"")
	storedRootKeys, _ := strconv.ParseBool(env("L402_STORED_ROOT_KEYS", "false"))
	fs.BoolVar(&o.storedRootKeys, "stored-root-keys", storedRootKeys, "mint each token under a random root key written to the state before its 402 (a durable write per challenge) instead of one derived from the state's master secret (no write); tokens minted either way keep working when this changes")
	fs.StringVar(&o.publicOrigin, "public-origin", env("L402_PUBLIC_ORIGIN", ""), "the origin clients address this proxy at, https://host[:port], when it serves one origin behind a front: what bind_origin routes bind tokens to and origin= caveats are checked against (default: read from each request)")
	fs.StringVar(&o.clientCertHeader, "client-cert-header", env("L402_CLIENT_CERT_HEADER", ""), "header in which a trusted forwarder passes the client's TLS certificate (SHA-256 hex, URL-escaped PEM or base64 DER), set by the front on every request; needed by bind_client_cert routes, as l402proxy does not end TLS itself")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.version {
		return o, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.schemes = splitList(schemes)
	if o.trustedForwarders, err = proxy.ParseTrustedForwarders(trusted); err != nil {
		return nil, fmt.Errorf("--trusted-forwarders: %w", err)
	}
	if o.forwardAuth == "off" {
		o.forwardAuth = ""
	}
	if o.forwardAuth != "" && (o.forwardAuth[0] != '/' || o.forwardAuth == "/") {
		return nil, fmt.Errorf("--forward-auth %q: want a path such as /l402/auth, or off", o.forwardAuth)
	}
	if o.forwardAuthCache < 0 {
		return nil, fmt.Errorf("--forward-auth-cache %s: must not be negative", o.forwardAuthCache)
	}
	if o.priceSat <= 0 {
		return nil, fmt.Errorf("--price must be positive, got %d", o.priceSat)
	}
	return o, nil
}

func run(ctx context.Context, args []string, out *os.File) error {
	if len(args) > 0 && args[0] == "state" {
		return stateCommand(args[1:], out)
	}
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	build := version.Read()
	if o.version {
		_, err := fmt.Fprint(out, build.String("l402proxy"))
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var routes []proxy.Route
	demo := false
	switch {
	case o.config != "":
		fc, err := loadConfig(o.config)
		if err != nil {
			return err
		}
		if fc.Listen != "" {
			o.listen = fc.Listen
		}
		if fc.Backend != "" {
			o.backendURL = fc.Backend
		}
		if fc.State != "" {
			o.state = fc.State
		}
		if len(fc.Schemes) > 0 {
			o.schemes = fc.Schemes
		}
		if fc.PaymentSecret != "" {
			o.paymentSecret = fc.PaymentSecret
		}
		o.tokenChallenges = o.tokenChallenges || fc.TokenChallenges
		o.storedRootKeys = o.storedRootKeys || fc.StoredRootKeys
		if fc.PublicOrigin != "" {
			o.publicOrigin = fc.PublicOrigin
		}
		if fc.ClientCertHeader != "" {
			o.clientCertHeader = fc.ClientCertHeader
		}
		fc.Server.apply(&o.server)
		if err := fc.UpstreamTransport.apply(&o.transport); err != nil {
			return fmt.Errorf("%s: %w", o.config, err)
		}
		for _, rc := range fc.Routes {
			r, err := rc.route()
			if err != nil {
				return err
			}
			routes = append(routes, r)
		}
	case o.upstream != "":
		up, err := parseUpstream(o.upstream)
		if err != nil {
			return err
		}
		routes = []proxy.Route{{Name: "upstream", PathPrefix: "/", Upstream: up, Price: backend.Sat(o.priceSat), SingleUse: o.singleUse}}
	default:
		demo = true
		routes = demoRoutes(backend.Sat(o.priceSat))
	}

	if err := o.server.check(); err != nil {
		return err
	}
	// The whole URL may be a secret (it can hold a password or rune).
	if o.backendURL, err = backend.ReadSecret(o.backendURL); err != nil {
		return fmt.Errorf("backend URL: %w", err)
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	b, err := backend.Open(openCtx, o.backendURL)
	cancel()
	if err != nil {
		return fmt.Errorf("open backend: %w", err)
	}
	defer b.Close()
	scheme := "?"
	if u, err := url.Parse(o.backendURL); err == nil {
		scheme = u.Scheme // never log the rest: it may hold a password
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build.Collector("l402proxy"))
	store, where, err := openState(ctx, o.state, o.newState)
	if err != nil {
		return err
	}
	defer store.Close()
	instance := o.instance
	if instance == "" {
		host, _ := os.Hostname()
		instance = host + "/" + o.listen
	}
	secret, err := paymentSecret(o, where, routes)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.BindClientCert && o.clientCertHeader == "" {
			// TLS never ends here: no request could carry a certificate.
			return fmt.Errorf("route %s binds tokens to the TLS client certificate: l402proxy does not end TLS itself, so set --client-cert-header (client_cert_header) to the header the front passes the certificate in", r.Name)
		}
	}
	p, err := proxy.New(proxy.Config{Backend: b, Routes: routes, Logger: log, Registerer: reg, TrustedForwarders: o.trustedForwarders,
		Transport: proxy.NewTransport(o.transport), ForwardAuthCacheMax: o.forwardAuthCache, Store: store, Instance: instance,
		Schemes: o.schemes, PaymentSecret: secret, TokenChallenges: o.tokenChallenges,
		StoredRootKeys: o.storedRootKeys, PublicOrigin: o.publicOrigin, ClientCertHeader: o.clientCertHeader})
	if err != nil {
		return err
	}
	defer p.Close()

	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if o.adminListen != "" {
		stopAdmin, err := serveAdmin(o.adminListen, metrics, p.HealthzWithNode(), log)
		if err != nil {
			return err
		}
		defer stopAdmin()
	} else {
		mux.Handle("/metrics", metrics)
	}
	if o.healthzNodeInfo {
		mux.Handle("/healthz", p.HealthzWithNode())
	} else {
		mux.Handle("/healthz", p.Healthz())
	}
	node, isMemory := memory.AsNode(b)
	if isMemory {
		// Development only: nobody outside this process can pay a memory
		// node's invoices, so the demo pays them on request.
		mux.Handle(memory.DevPayPath, memory.DevPayHandler(node))
	}
	if o.lnurlName != "" {
		base := o.lnurlBaseURL
		if base == "" {
			base = "http://" + o.listen
		}
		bu, err := url.Parse(base)
		if err != nil || bu.Host == "" {
			return fmt.Errorf("--lnurl-base-url %q: want scheme://host[:port]", base)
		}
		ls, err := lnurl.NewServer(lnurl.ServerConfig{Backend: b, Domain: bu.Host, BaseURL: base, Names: []string{o.lnurlName}, Logger: log})
		if err != nil {
			return fmt.Errorf("lnurl server: %w", err)
		}
		mux.Handle("/.well-known/lnurlp/", ls)
		mux.Handle("/lnurlp/", ls)
		log.Info("serving lightning address", "address", o.lnurlName+"@"+bu.Host, "pay_request", base+"/.well-known/lnurlp/"+o.lnurlName)
	}
	if o.forwardAuth != "" {
		// Before "/": a more specific pattern, so it is never priced itself.
		mux.Handle(o.forwardAuth, p.ForwardAuth())
	}
	var gate http.Handler = p
	if demo {
		gate = p.Middleware(demoUpstream())
	}
	mux.Handle("/", gate)

	if o.pprof != "" {
		stopPprof, err := servePprof(o.pprof, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	// Signals are caught before the port opens: a SIGTERM as soon as the
	// proxy listens is a graceful stop too, never the default kill.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	limits := newAddrLimits(o.server.maxConnsPerAddr, o.server.maxBodiesPerAddr, p.IsTrustedForwarder, reg)
	srv := o.server.server(limits.handler(uncleanToGate(mux, gate)), log)
	log.Info("l402proxy listening", "addr", ln.Addr().String(), "backend", scheme, "state", where, "instance", instance, "abilities", backend.Abilities(b), "routes", len(routes))
	if demo || isMemory {
		printWalkthrough(out, ln.Addr().String(), isMemory, demo)
	}

	return o.server.serve(ctx, srv, o.server.listener(limits.listener(ln)), p, log)
}

func printWalkthrough(out io.Writer, addr string, memoryBackend, demo bool) {
	base := "http://" + addr
	path := "/paid/article"
	if !demo {
		path = "/"
	}
	fmt.Fprintf(out, "\nl402proxy is up on %s. Try the 402 flow:\n\n", base)
	fmt.Fprintf(out, "  # 1. ask: 402 Payment Required with a macaroon and an invoice\n")
	fmt.Fprintf(out, "  curl -si %s%s\n\n", base, path)
	fmt.Fprintf(out, "  # the same, keeping the macaroon and the invoice of one challenge\n")
	fmt.Fprintf(out, "  H=$(curl -si %s%s | grep -i '^www-authenticate: L402'); MAC=$(echo \"$H\" | sed 's/.*macaroon=\"\\([^\"]*\\)\".*/\\1/'); INV=$(echo \"$H\" | sed 's/.*invoice=\"\\([^\"]*\\)\".*/\\1/')\n\n", base, path)
	printPayStep(out, base, memoryBackend)
	fmt.Fprintf(out, "  # 3. retry with the token: 200 and the paid body\n")
	fmt.Fprintf(out, "  curl -s -H \"Authorization: L402 $MAC:$PRE\" %s%s\n\n", base, path)
	if demo {
		printPaymentWalkthrough(out, base, path, memoryBackend)
		fmt.Fprintf(out, "  # optional route: plain clients get the free variant, L402 clients a challenge\n")
		fmt.Fprintf(out, "  curl -s %s/podcast/ep1\n  curl -si -H 'Accept-Authenticate: L402' %s/podcast/ep1\n\n", base, base)
		fmt.Fprintf(out, "  # or all in one: go run ./cmd/l402 get %s%s --backend memory+dev://%s --max-price 100\n\n", base, path, addr)
	}
}

// printPayStep prints how to pay $INV and set PRE to its preimage.
func printPayStep(out io.Writer, base string, memoryBackend bool) {
	if memoryBackend {
		fmt.Fprintf(out, "  # 2. pay (development endpoint, memory backend only)\n")
		fmt.Fprintf(out, "  PRE=$(curl -s -d invoice=$INV %s%s | sed 's/.*\"preimage\":\"\\([0-9a-f]*\\)\".*/\\1/')\n\n", base, memory.DevPayPath)
	} else {
		fmt.Fprintf(out, "  # 2. pay $INV with any wallet and set PRE to the preimage it shows\n\n")
	}
}

// printPaymentWalkthrough prints the demo's /paid/ flow with the Payment
// scheme (Lightning charge), as README shows it: the route offers it in the
// same 402 as L402.
func printPaymentWalkthrough(out io.Writer, base, path string, memoryBackend bool) {
	fmt.Fprintf(out, "  # the same route with the Payment scheme (Lightning charge): one credential buys one request\n")
	fmt.Fprintf(out, "  # 1. the Payment challenge of the 402 and its parameters; request is base64url JSON naming the invoice\n")
	fmt.Fprintf(out, "  P=$(curl -si %s%s | grep -i '^www-authenticate: Payment' | tr -d '\\r'); p() { echo \"$P\" | sed \"s/.* $1=\\\"\\([^\\\"]*\\)\\\".*/\\1/\"; }\n", base, path)
	fmt.Fprintf(out, "  ID=$(p id); REALM=$(p realm); REQ=$(p request); EXP=$(p expires); OPQ=$(p opaque)\n")
	fmt.Fprintf(out, "  b64d() { s=$(echo \"$1\" | tr '_-' '/+'); while [ $(( ${#s} %% 4 )) -ne 0 ]; do s=\"$s=\"; done; echo \"$s\" | base64 -d; }\n")
	fmt.Fprintf(out, "  INV=$(b64d $REQ | sed 's/.*\"invoice\":\"\\([^\"]*\\)\".*/\\1/')\n\n")
	printPayStep(out, base, memoryBackend)
	fmt.Fprintf(out, "  # 3. the credential (the challenge echoed, and the preimage, as base64url JSON): 200 and a Payment-Receipt\n")
	fmt.Fprintf(out, "  CRED=$(printf '{\"challenge\":{\"id\":\"%%s\",\"realm\":\"%%s\",\"method\":\"lightning\",\"intent\":\"charge\",\"request\":\"%%s\",\"expires\":\"%%s\",\"opaque\":\"%%s\"},\"payload\":{\"preimage\":\"%%s\"}}' \"$ID\" \"$REALM\" \"$REQ\" \"$EXP\" \"$OPQ\" \"$PRE\" | base64 -w0 | tr '+/' '-_' | tr -d '=')\n")
	fmt.Fprintf(out, "  curl -si -H \"Authorization: Payment $CRED\" %s%s\n", base, path)
	fmt.Fprintf(out, "  # 4. the same credential again: 402, problem+json verification-failed (used)\n")
	fmt.Fprintf(out, "  curl -s -H \"Authorization: Payment $CRED\" %s%s\n\n", base, path)
}

// uncleanToGate sends a request whose path is not in clean form (dot
// segments, doubled slashes) to the gate as it came, and every other
// request to mux. ServeMux answers such a path with a redirect to its
// cleaned form; the gate refuses it with 400, as for every path some
// server could read differently, so no reading of it is ever served.
func uncleanToGate(mux *http.ServeMux, gate http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != "" && p != "*" && cleanPath(p) != p {
			gate.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// cleanPath is ServeMux's reading of a path: path.Clean, keeping a
// trailing slash.
func cleanPath(p string) string {
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
