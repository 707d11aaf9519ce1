// Package promserver runs the peers tests compare kmetrics with —
// Prometheus (Debian's, or $PROMETHEUS_BIN) and VictoriaMetrics — and
// writes samples to them by remote write.
package promserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/kmetrics/kmetrics/test/internal/peers"
)

// Server is a running Prometheus.
type Server struct {
	URL string
	cmd *exec.Cmd
	Log string
}

// Start runs the prometheus binary on PATH (or $PROMETHEUS_BIN) with a
// remote-write receiver on 127.0.0.1:port and its data under dir.
func Start(dir, port string) (*Server, error) {
	bin, err := exec.LookPath("prometheus")
	// make e2e may still be building Prometheus 3.15 (hack/build-peers.sh).
	if b, perr := peers.Binary("PROMETHEUS_BIN", peers.Wait, nil); perr == nil {
		bin, err = b, nil
	} else if !errors.Is(perr, peers.ErrNotConfigured) {
		return nil, perr
	}
	if err != nil {
		return nil, fmt.Errorf("Debian's prometheus is not installed (hack/build-cluster-bins.sh installs it): %w", err)
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o644); err != nil {
		return nil, err
	}
	return start(dir, port, "prometheus", bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+port, "--web.enable-remote-write-receiver", "--web.enable-admin-api")
}

// StartVictoriaMetrics runs VictoriaMetrics single-node (bin) on
// 127.0.0.1:port with its data in dir/data: no query cache, no latency
// offset (a benchmark reads fresh samples, every time from storage).
func StartVictoriaMetrics(dir, port, bin string) (*Server, error) {
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return start(dir, port, "victoria-metrics", bin, "-storageDataPath="+filepath.Join(dir, "data"), "-httpListenAddr=127.0.0.1:"+port,
		"-retentionPeriod=100y", "-search.latencyOffset=0", "-search.disableCache")
}

func start(dir, port, name, bin string, args ...string) (*Server, error) {
	s := &Server{URL: "http://127.0.0.1:" + port, Log: filepath.Join(dir, name+".log")}
	log, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(s.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("%s not ready after 30s; log %s", name, s.Log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Pid is the server's process ID.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop kills the server.
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// Series is one series' samples.
type Series struct {
	Labels  labels.Labels
	Samples []prompb.Sample
}

// Write remote-writes series (the 0.1.0 protocol Prometheus 2.42 receives).
func (s *Server) Write(series []Series) error {
	var req prompb.WriteRequest
	for _, sr := range series {
		ts := prompb.TimeSeries{Samples: sr.Samples}
		sr.Labels.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
		req.Timeseries = append(req.Timeseries, ts)
	}
	raw, err := req.Marshal()
	if err != nil {
		return err
	}
	hreq, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("remote write: %s: %s", resp.Status, b)
	}
	return nil
}
