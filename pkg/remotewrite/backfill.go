package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/prompb"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// ProgressFile, in the TSDB directory, holds the newest timestamp (ms)
// every queue had sent. Prometheus' WAL watcher starts at "now" after a
// restart (prometheus#8809), so what was stored but not sent before it
// would never be sent: kmetrics sends that gap from its TSDB (backfill).
const ProgressFile = "kmetrics-remote-write.progress"

// backfillBatch is the samples of one backfill request.
const backfillBatch = 2000

// lateSamples bounds how far a sample's own timestamp may lag its append.
// A kubelet stamps /metrics/resource with cAdvisor's last housekeeping (up
// to 15 s old by default), and a target is scraped once per interval after
// the restart: a sample stamped before the restart can be stored after it.
// The WAL watcher skips it (it sends only what is newer than its start), so
// the backfill reads the TSDB only this long after the restart.
var lateSamples = time.Minute

func (w *Writer) progressPath() string { return filepath.Join(w.dir, ProgressFile) }

// saveProgress records how far every queue has sent. Nothing is written
// until every queue has sent something since the start, nor while the
// backfill of the last run's gap is pending: the previous record stays the
// lower bound.
func (w *Writer) saveProgress() {
	if w.backfillPending.Load() {
		return
	}
	ts := w.rws.LowestSentTimestamp()
	if ts <= 0 {
		return
	}
	tmp := w.progressPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(ts, 10)), 0o644); err != nil {
		w.logger.Error("Recording remote write progress", "err", err)
		return
	}
	if err := os.Rename(tmp, w.progressPath()); err != nil {
		w.logger.Error("Recording remote write progress", "err", err)
	}
}

func (w *Writer) loadProgress() int64 {
	b, err := os.ReadFile(w.progressPath())
	if err != nil {
		return 0
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return ts
}

// Backfill sends what db holds after the last recorded progress and up to
// the queues' start (when their WAL watchers began) to every remote_write
// endpoint, with its external labels and write_relabel_configs, retrying
// recoverable errors until ctx ends. It is a no-op on a first start or
// when nothing was left unsent. Call it once the TSDB is open; it reads
// the TSDB lateSamples after the start (the samples stamped before it may
// still be coming).
func (w *Writer) Backfill(ctx context.Context, db promstorage.Queryable) {
	// The queues' watchers started a moment after w.started and send
	// what is later than their start: a second more leaves no gap (a
	// sample in it may come twice; at least once).
	from, to := w.loadProgress(), w.started.Add(time.Second).UnixMilli()
	if from <= 0 || from >= to {
		w.backfillPending.Store(false)
		return
	}
	select {
	case <-ctx.Done():
		return // the next start sends the gap
	case <-time.After(time.Until(w.started.Add(lateSamples))):
	}
	w.mu.Lock()
	cfg := w.applied
	w.mu.Unlock()
	if cfg == nil {
		w.backfillPending.Store(false)
		return
	}
	defer func() {
		// Stopped part way (shutdown): the progress stays where it was,
		// and the next start sends the gap again (at least once).
		if ctx.Err() == nil {
			w.backfillPending.Store(false)
		}
	}()
	for _, rwc := range cfg.RemoteWriteConfigs {
		n, err := w.backfillOne(ctx, db, cfg.GlobalConfig.ExternalLabels, rwc, from, to)
		if err != nil {
			w.logger.Error("Sending what was stored but not sent before the restart", "url", rwc.URL.Redacted(), "err", err, "sent", n)
			continue
		}
		w.logger.Info("Sent what was stored but not sent before the restart", "url", rwc.URL.Redacted(), "samples", n,
			"from", time.UnixMilli(from), "to", time.UnixMilli(to))
	}
}

func (w *Writer) backfillOne(ctx context.Context, db promstorage.Queryable, external labels.Labels, rwc *config.RemoteWriteConfig, from, to int64) (int, error) {
	client, err := remote.NewWriteClient("backfill", &remote.ClientConfig{
		URL: rwc.URL, Timeout: rwc.RemoteTimeout, HTTPClientConfig: rwc.HTTPClientConfig,
		SigV4Config: rwc.SigV4Config, AzureADConfig: rwc.AzureADConfig, GoogleIAMConfig: rwc.GoogleIAMConfig,
		Headers: rwc.Headers, RetryOnRateLimit: rwc.QueueConfig.RetryOnRateLimit,
	})
	if err != nil {
		return 0, err
	}
	q, err := db.Querier(from+1, to)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	var (
		req  prompb.WriteRequest
		n    int
		size int
		it   chunkenc.Iterator
		lb   = labels.NewBuilder(labels.EmptyLabels())
	)
	flush := func() error {
		if size == 0 {
			return nil
		}
		if err := send(ctx, client, &req); err != nil {
			return err
		}
		// Counted per request: a long backfill shows its progress.
		n += size
		backfilledSamples.Add(float64(size))
		req.Timeseries, size = req.Timeseries[:0], 0
		return nil
	}
	for set.Next() {
		s := set.At()
		lb.Reset(s.Labels())
		external.Range(func(l labels.Label) {
			if lb.Get(l.Name) == "" {
				lb.Set(l.Name, l.Value)
			}
		})
		if !relabel.ProcessBuilder(lb, rwc.WriteRelabelConfigs...) {
			continue
		}
		ts := prompb.TimeSeries{Labels: prompb.FromLabels(lb.Labels(), nil)}
		it = s.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			// Native histograms only where the queues send them too
			// (send_native_histograms).
			switch {
			case vt == chunkenc.ValFloat:
				t, v := it.At()
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: v})
			case vt == chunkenc.ValHistogram && rwc.SendNativeHistograms:
				t, h := it.AtHistogram(nil)
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(t, h))
			case vt == chunkenc.ValFloatHistogram && rwc.SendNativeHistograms:
				t, fh := it.AtFloatHistogram(nil)
				ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(t, fh))
			}
		}
		if len(ts.Samples)+len(ts.Histograms) == 0 {
			continue
		}
		req.Timeseries = append(req.Timeseries, ts)
		size += len(ts.Samples) + len(ts.Histograms)
		if size >= backfillBatch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := set.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// send stores one request, retrying recoverable errors (5xx, network) with
// backoff as the queues do, until ctx ends.
func send(ctx context.Context, client remote.WriteClient, req *prompb.WriteRequest) error {
	raw, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	body := snappy.Encode(nil, raw)
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		_, err := client.Store(ctx, body, attempt)
		var recoverable remote.RecoverableError
		if err == nil || !errors.As(err, &recoverable) {
			if err != nil {
				return fmt.Errorf("refused: %w", err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
