package main

import (
	"fmt"
	"net/http"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/proxy"
)

// demoRoutes price the built-in demo upstream: a paid article (sold with
// L402 and with the Payment scheme's Lightning charge, both in one 402), a podcast
// whose ad-free variant is for paying clients, and a free page.
func demoRoutes(price backend.MilliSat) []proxy.Route {
	return []proxy.Route{
		{Name: "paid", PathPrefix: "/paid/", Price: price, Mode: proxy.ModeRequired, Schemes: []string{proxy.SchemeL402, proxy.SchemePayment}},
		{Name: "podcast", PathPrefix: "/podcast/", Price: price, Mode: proxy.ModeOptional},
		{Name: "free", PathPrefix: "/free/", Mode: proxy.ModeFree},
	}
}

// demoUpstream answers as a service behind the proxy would, reading the
// proxy's X-L402-Paid header to pick the variant.
func demoUpstream() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/paid/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "paid content for %s: thank you for paying with Lightning\n", r.URL.Path)
	})
	mux.HandleFunc("/podcast/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(proxy.HeaderPaid) == "true" {
			fmt.Fprintf(w, "podcast %s: ad-free episode\n", r.URL.Path)
			return
		}
		fmt.Fprintf(w, "podcast %s: episode with ads (send Accept-Authenticate: L402 to buy the ad-free one)\n", r.URL.Path)
	})
	mux.HandleFunc("/free/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "free content for %s\n", r.URL.Path)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "demo upstream: try /paid/, /podcast/ or /free/", http.StatusNotFound)
	})
	return mux
}
