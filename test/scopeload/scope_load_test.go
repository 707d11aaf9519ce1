//go:build bench

// Package scopeload measures what per-team query scopes cost the API
// server: 50 teams on a cluster of 1,000 namespaces (each team's
// ServiceAccount bound to view in 20 of them), each with a Grafana
// dashboard refreshing every 30 s through the real kmetrics binary on a
// real control plane (hack/cluster.sh). Reported: the SubjectAccessReviews
// and TokenReviews the API server served (its own apiserver_request_total),
// their latency there, the latency of a plain GET meanwhile against a
// baseline minute without dashboards, and the panels' latency.
//
//	make bench-scope-load   (SCOPELOAD_DURATION=10m, SCOPELOAD_ALL_DURATION=2m)
package scopeload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kmetrics/kmetrics/test/internal/benchcluster"
)

const (
	teams          = 50
	namespaces     = 1000
	perTeam        = namespaces / teams
	refresh        = 30 * time.Second // a dashboard's refresh
	apiserverPort  = "36443"
	kmetricsPort   = "38443"
	teamsNamespace = "teams"
)

// A dashboard's refresh: its panels' range queries and the namespace
// variable, as Grafana sends them (form POSTs, the variable by GET).
var panels = []struct{ path, query string }{
	{"query_range", `sum by (namespace) (rate(container_cpu_usage_seconds_total[5m]))`},
	{"query_range", `sum by (namespace) (container_memory_working_set_bytes)`},
	{"query_range", `sum by (pod) (rate(container_cpu_usage_seconds_total[5m]))`},
	{"query_range", `sum by (pod) (container_memory_working_set_bytes)`},
	{"query_range", `topk(10, sum by (pod) (rate(container_cpu_usage_seconds_total[5m])))`},
	{"query", `sum(rate(container_cpu_usage_seconds_total[5m]))`},
	{"query", `count(kube_pod_info)`},
	{"query_range", `sum by (namespace) (kube_pod_container_status_restarts_total)`},
	{"label/namespace/values", ""},
}

func TestScopeLoad(t *testing.T) {
	c := benchcluster.Up(t, benchcluster.Config{Name: "scopeload", APIServerPort: apiserverPort, EtcdPort: "32379", KmetricsPort: kmetricsPort,
		NodeNet: "127.0.4", PodNet: "127.130", Nodes: 1})
	admin := c.Admin
	tokens := createTeams(t, admin)

	modes := []struct {
		mode     string
		duration time.Duration
	}{{"rolebindings", benchcluster.DurationEnv(t, "SCOPELOAD_DURATION", 10*time.Minute)}, {"all", benchcluster.DurationEnv(t, "SCOPELOAD_ALL_DURATION", 2*time.Minute)}}
	for _, m := range modes {
		if m.duration <= 0 {
			continue
		}
		t.Run(m.mode, func(t *testing.T) {
			stop := startKmetrics(t, c, m.mode)
			defer stop()
			client := httpsClient(c.RootCAs(t))
			waitServing(t, client, tokens[0])

			// A minute of the API server alone, then the dashboards.
			probe := newProbe(admin)
			probe.run(time.Minute)
			baseline := probe.take()
			before := apiserverMetrics(t, admin)
			panelsSeen := runDashboards(client, tokens, m.duration, probe)
			during := probe.take()
			after := apiserverMetrics(t, admin)

			minutes := m.duration.Minutes()
			sars := after.count("subjectaccessreviews") - before.count("subjectaccessreviews")
			trs := after.count("tokenreviews") - before.count("tokenreviews")
			t.Logf("RESULT mode=%s teams=%d namespaces=%d per-team=%d refresh=%v duration=%v panels=%d",
				m.mode, teams, namespaces, perTeam, refresh, m.duration, panelsSeen.n())
			t.Logf("RESULT subjectaccessreviews=%.0f (%.0f/min, %.1f/s) tokenreviews=%.0f (%.0f/min) sar-mean=%.2fms sar-p99=%.1fms",
				sars, sars/minutes, sars/m.duration.Seconds(), trs, trs/minutes,
				1000*after.meanSince(before, "subjectaccessreviews"), 1000*after.quantileSince(before, "subjectaccessreviews", 0.99))
			t.Logf("RESULT apiserver GET latency: baseline p50=%.2fms p99=%.2fms; under the dashboards p50=%.2fms p99=%.2fms",
				ms(quantile(baseline, 0.5)), ms(quantile(baseline, 0.99)), ms(quantile(during, 0.5)), ms(quantile(during, 0.99)))
			t.Logf("RESULT panels through kmetrics: p50=%.1fms p99=%.1fms errors=%d",
				ms(quantile(panelsSeen.latencies(), 0.5)), ms(quantile(panelsSeen.latencies(), 0.99)), panelsSeen.errors())
			// With every namespace reviewed (=all) the API server cannot keep
			// up at this size: what the run shows, not a failure of it.
			if m.mode == "rolebindings" && panelsSeen.errors() > 0 {
				t.Errorf("%d panel requests failed (first: %s)", panelsSeen.errors(), panelsSeen.firstError())
			}
		})
	}
}

// createTeams makes the namespaces, one ServiceAccount per team bound to
// view in its 20 namespaces, and returns each team's token.
func createTeams(t *testing.T, c kubernetes.Interface) []string {
	ctx := context.Background()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: teamsNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	parallel(t, namespaces, func(i int) error {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace(i)}}, metav1.CreateOptions{})
		return err
	})
	tokens := make([]string, teams)
	parallel(t, teams, func(i int) error {
		name := fmt.Sprintf("team-%02d", i)
		if _, err := c.CoreV1().ServiceAccounts(teamsNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		for j := i * perTeam; j < (i+1)*perTeam; j++ {
			rb := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-view", Namespace: appNamespace(j)},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: teamsNamespace}},
			}
			if _, err := c.RbacV1().RoleBindings(rb.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
		exp := int64(4 * 3600)
		tr, err := c.CoreV1().ServiceAccounts(teamsNamespace).CreateToken(ctx, name,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		tokens[i] = tr.Status.Token
		return nil
	})
	return tokens
}

func appNamespace(i int) string { return fmt.Sprintf("app-%04d", i) }

func parallel(t *testing.T, n int, f func(i int) error) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	slots := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := f(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// startKmetrics runs bin/kmetrics as its ServiceAccount (deploy/'s RBAC)
// with the scope decisions' namespaces from mode.
func startKmetrics(t *testing.T, c *benchcluster.Cluster, mode string) func() {
	log, err := os.Create(filepath.Join(c.State, "logs", "kmetrics-"+mode+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(c.Root, "bin", "kmetrics"), append(c.KmetricsFlags(),
		"--storage.tsdb.path", filepath.Join(c.State, "tsdb-"+mode),
		"--query.scope-namespaces", mode)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	}
}

func httpsClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "kmetrics.kube-system.svc"}, MaxIdleConnsPerHost: 4 * teams,
	}}
}

func request(client *http.Client, token, path, query string) (time.Duration, error) {
	end := time.Now()
	form := url.Values{}
	method := http.MethodGet
	if query != "" {
		method = http.MethodPost
		form.Set("query", query)
		form.Set("time", strconv.FormatInt(end.Unix(), 10))
		if path == "query_range" {
			form.Set("start", strconv.FormatInt(end.Add(-time.Hour).Unix(), 10))
			form.Set("end", strconv.FormatInt(end.Unix(), 10))
			form.Set("step", "15")
		}
	}
	u := "https://127.0.0.1:" + kmetricsPort + "/prometheus/api/v1/" + path
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s %s: %d %.200s", method, path, resp.StatusCode, raw)
	}
	return time.Since(start), nil
}

// waitServing waits until a team's query is answered (informers synced:
// before that a scope is undecidable and the answer is 503).
func waitServing(t *testing.T, client *http.Client, token string) {
	benchcluster.Eventually(t, "kmetrics answers a team", 2*time.Minute, func() error {
		_, err := request(client, token, "query", "1")
		return err
	})
}

// panelStats collects the panels' latencies and errors.
type panelStats struct {
	mu       sync.Mutex
	lat      []time.Duration
	failed   int
	firstErr string
}

func (p *panelStats) add(d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.failed == 0 {
			p.firstErr = err.Error()
		}
		p.failed++
		return
	}
	p.lat = append(p.lat, d)
}

func (p *panelStats) n() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lat) + p.failed
}

func (p *panelStats) errors() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

func (p *panelStats) latencies() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lat)
}

func (p *panelStats) firstError() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}

// runDashboards refreshes each team's dashboard every 30 s, the teams
// spread evenly over the interval, for d; the probe runs meanwhile.
func runDashboards(client *http.Client, tokens []string, d time.Duration, probe *probe) *panelStats {
	stats := &panelStats{}
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for i, token := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * refresh / time.Duration(len(tokens)))
			tick := time.NewTicker(refresh)
			defer tick.Stop()
			for time.Now().Before(stop) {
				var panelsWG sync.WaitGroup
				for _, p := range panels {
					panelsWG.Add(1)
					go func() {
						defer panelsWG.Done()
						stats.add(request(client, token, p.path, p.query))
					}()
				}
				panelsWG.Wait()
				<-tick.C
			}
		}()
	}
	probe.run(d)
	wg.Wait()
	return stats
}

// probe times a plain GET of the API server once a second.
type probe struct {
	c   kubernetes.Interface
	lat []time.Duration
}

func newProbe(c kubernetes.Interface) *probe { return &probe{c: c} }

func (p *probe) run(d time.Duration) {
	for stop := time.Now().Add(d); time.Now().Before(stop); time.Sleep(time.Second) {
		start := time.Now()
		if _, err := p.c.CoreV1().Namespaces().Get(context.Background(), teamsNamespace, metav1.GetOptions{}); err == nil {
			p.lat = append(p.lat, time.Since(start))
		}
	}
}

func (p *probe) take() []time.Duration { l := p.lat; p.lat = nil; return l }

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// metrics is the API server's own apiserver_request_total and
// apiserver_request_duration_seconds.
type metrics map[string]*dto.MetricFamily

func apiserverMetrics(t *testing.T, c kubernetes.Interface) metrics {
	raw, err := c.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return mf
}

func resourceIs(m *dto.Metric, resource string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == "resource" && l.GetValue() == resource {
			return true
		}
	}
	return false
}

func (m metrics) count(resource string) float64 {
	var n float64
	for _, s := range m["apiserver_request_total"].GetMetric() {
		if resourceIs(s, resource) {
			n += s.GetCounter().GetValue()
		}
	}
	return n
}

// histogram sums the duration histograms of resource: cumulative bucket
// counts by upper bound, the sum and the count.
func (m metrics) histogram(resource string) (map[float64]float64, float64, float64) {
	buckets := map[float64]float64{}
	var sum, count float64
	for _, s := range m["apiserver_request_duration_seconds"].GetMetric() {
		if !resourceIs(s, resource) {
			continue
		}
		h := s.GetHistogram()
		sum += h.GetSampleSum()
		count += float64(h.GetSampleCount())
		for _, b := range h.GetBucket() {
			buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	return buckets, sum, count
}

func (m metrics) meanSince(before metrics, resource string) float64 {
	_, s1, c1 := m.histogram(resource)
	_, s0, c0 := before.histogram(resource)
	if c1 == c0 {
		return 0
	}
	return (s1 - s0) / (c1 - c0)
}

// quantileSince is the bucket bound below which q of the requests since
// before fell (the histogram's resolution).
func (m metrics) quantileSince(before metrics, resource string, q float64) float64 {
	b1, _, c1 := m.histogram(resource)
	b0, _, c0 := before.histogram(resource)
	total := c1 - c0
	bounds := make([]float64, 0, len(b1))
	for le := range b1 {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	for _, le := range bounds {
		if b1[le]-b0[le] >= q*total {
			return le
		}
	}
	return math.Inf(1)
}
