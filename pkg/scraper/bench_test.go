package scraper

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// BenchmarkAppendBody measures decode + append (+ commit) of one node's
// /metrics/resource into a real TSDB, in the steady state (series cached).
func BenchmarkAppendBody(b *testing.B) {
	for _, pods := range []int{30, 110} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			db, err := storage.Open(storage.Options{Path: b.TempDir()}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			// Timestamps are left out so that one body can be appended at
			// advancing scrape times (as for kwok); parsing cost is the same.
			const ts = 1700000000000
			body := bytes.ReplaceAll(kubeletBody("", pods, 2, ts, steadyCPU(ts)), []byte(fmt.Sprintf(" %d\n", ts)), []byte("\n"))
			tg := newTarget("n", "10.0.0.1:10250", DefaultResourceMetricsPath)
			now := time.Now()
			var samples int
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				app := db.Appender(context.Background())
				res, err := tg.appendBody(app, body, "text/plain; version=0.0.4", now.Add(time.Duration(i)*15*time.Second))
				if err != nil {
					b.Fatal(err)
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
				samples = res.appended
			}
			b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
