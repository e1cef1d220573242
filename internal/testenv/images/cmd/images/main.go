// Command images builds the regtest harness's container images (btcd and
// lnd, FROM scratch, from pinned versions) when their tags are missing:
//
//	go run ./internal/testenv/images/cmd/images           # build what is missing
//	go run ./internal/testenv/images/cmd/images -rebuild  # build again (cached binaries reused)
//	go run ./internal/testenv/images/cmd/images -print    # print the image references and exit
//	go run ./internal/testenv/images/cmd/images -traefik  # build only the Traefik binary the front-server tests run
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/l402kit/l402kit/internal/testenv/images"
)

func main() {
	rebuild := flag.Bool("rebuild", false, "build even when the tags exist")
	print := flag.Bool("print", false, "print the image references and exit")
	verbose := flag.Bool("v", false, "show compiler and builder output")
	traefik := flag.Bool("traefik", false, "build only the Traefik binary (cached by version), not the images")
	flag.Parse()
	if *print {
		for _, s := range []images.Spec{images.BTCD(), images.LND()} {
			fmt.Println(s.Ref)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var out io.Writer
	if *verbose {
		out = os.Stderr
	}
	log.SetFlags(0)
	start := time.Now()
	if *traefik {
		r, bin, err := images.EnsureTraefik(ctx, images.Options{Logf: log.Printf, Output: out})
		if err != nil {
			log.Fatal(err)
		}
		if r.Compiled {
			fmt.Printf("%s: compiled in %s: %s\n", r.Ref, r.Took.Round(time.Second), bin)
		} else {
			fmt.Printf("%s: %s\n", r.Ref, r.Note)
		}
		return
	}
	res, err := images.Ensure(ctx, images.Options{Logf: log.Printf, Output: out, Rebuild: *rebuild})
	for _, r := range res {
		switch {
		case r.Built:
			fmt.Printf("%s: built in %s (compiled: %v)\n", r.Ref, r.Took.Round(time.Second), r.Compiled)
		default:
			fmt.Printf("%s: %s\n", r.Ref, r.Note)
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("images ready in %s\n", time.Since(start).Round(time.Second))
}
