package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The observation endpoint (metrics-addr) serves Prometheus metrics and the
// two probes orchestrators expect: /healthz (liveness: the process serves
// clients) and /readyz (readiness: a region node knows its leader and has
// caught up; a single node is ready whenever it serves).

// newRegistry returns a registry holding the Go runtime and process
// collectors. It is the node's own, not prometheus.DefaultRegisterer, so
// that nothing a library registers globally leaks into /metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// opsHandler serves /metrics from reg, /healthz from live and /readyz from
// live and ready. Both probes answer 200 "ok" or 503 "unavailable".
func opsHandler(reg *prometheus.Registry, live, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg,
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	mux.HandleFunc("GET /healthz", probe(live))
	mux.HandleFunc("GET /readyz", probe(func() bool { return live() && ready() }))
	return mux
}

func probe(ok func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if ok() {
			w.Write([]byte("ok\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("unavailable\n"))
	}
}

// opsServer is the running observation endpoint.
type opsServer struct {
	srv  *http.Server
	done chan struct{}
}

// startOps serves h on ln until stop.
func startOps(ln net.Listener, h http.Handler, log *slog.Logger) *opsServer {
	o := &opsServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(o.done)
		if err := o.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return o
}

// stop lets in-flight scrapes finish until ctx ends, then closes.
func (o *opsServer) stop(ctx context.Context) {
	if o == nil {
		return
	}
	if o.srv.Shutdown(ctx) != nil {
		o.srv.Close()
	}
	<-o.done
}
