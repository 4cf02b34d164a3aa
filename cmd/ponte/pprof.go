//go:build pprof

package main

import (
	"log"
	"net/http"
	_ "net/http/pprof" // the profiling handlers, on their own listener
	"os"
)

// A binary built with -tags pprof serves net/http/pprof on PONTE_PPROF_ADDR
// (a loopback address), for profiling under load (BENCHMARKS.md). Release
// builds have no such listener.
func init() {
	addr := os.Getenv("PONTE_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() { log.Println(http.ListenAndServe(addr, nil)) }()
}
