//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// appFleet plays the applications of one namespace: on the (loopback) IP of
// every running pod it serves what the pod's app label says — "web" a
// request counter rising by its share of the fleet's load, "broker" a queue
// length gauge — for kmetrics to discover and scrape like real pods.
type appFleet struct {
	ns, port string

	mu      sync.Mutex
	load    float64 // requests per second over all web pods
	queue   float64
	servers map[string]*fakeApp // by pod IP
	// custom answers /metrics for pods of other app labels (hostile ones).
	custom map[string]http.HandlerFunc
}

type fakeApp struct {
	app      string
	requests float64
	srv      *http.Server
}

func startAppFleet(t *testing.T, ns, port string) *appFleet {
	f := &appFleet{ns: ns, port: port, servers: map[string]*fakeApp{}, custom: map[string]http.HandlerFunc{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, a := range f.servers {
			_ = a.srv.Close()
		}
	})
	return f
}

// serve answers the /metrics of the pods labelled app with h.
func (f *appFleet) serve(app string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.custom[app] = h
}

func (f *appFleet) set(load, queue float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load, f.queue = load, queue
}

func (f *appFleet) run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, lastSync := time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(lastSync) >= time.Second {
				f.sync()
				lastSync = now
			}
			f.advance(now.Sub(last).Seconds())
			last = now
		}
	}
}

// advance spreads dt seconds of load evenly over the web pods, as a
// Service would.
func (f *appFleet) advance(dt float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var web []*fakeApp
	for _, a := range f.servers {
		if a.app == "web" {
			web = append(web, a)
		}
	}
	for _, a := range web {
		a.requests += f.load * dt / float64(len(web))
	}
}

// sync starts a server for each new running pod and stops those of pods
// that went away.
func (f *appFleet) sync() {
	out, err := kubectl("-n", f.ns, "get", "pods", "-o",
		`jsonpath={range .items[*]}{.status.podIP} {.metadata.labels.app} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}`)
	if err != nil {
		return
	}
	live := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[2] == "Running" {
			live[fields[0]] = fields[1]
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ip, a := range f.servers {
		if live[ip] != a.app {
			_ = a.srv.Close()
			delete(f.servers, ip)
		}
	}
	for ip, app := range live {
		if _, ok := f.servers[ip]; ok {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, f.port))
		if err != nil {
			continue // retried next sync
		}
		a := &fakeApp{app: app}
		a.srv = &http.Server{Handler: f.handler(a), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = a.srv.Serve(ln) }()
		f.servers[ip] = a
	}
}

func (f *appFleet) handler(a *fakeApp) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		if h := f.custom[a.app]; h != nil {
			f.mu.Unlock()
			h(w, r)
			return
		}
		var body string
		switch a.app {
		case "web":
			body = fmt.Sprintf("# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} %g\n", math.Floor(a.requests))
		case "broker":
			body = fmt.Sprintf("# TYPE queue_messages gauge\nqueue_messages{queue=\"jobs\"} %g\nqueue_messages{queue=\"mail\"} 1\n", f.queue)
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(body))
	})
}
