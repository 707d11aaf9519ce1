package storage

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// BenchmarkHeadAppendStripes: appenders on every core (-cpu) writing a
// sample to each of 100,000 series (a 3,000-node cluster's kubelet
// series), with the head's series spread over headStripeSize's stripes and
// over Prometheus' 16,384. Fewer stripes save memory; this says what they
// cost in contention on the machine it runs on.
//
//	go test -run '^$' -bench HeadAppendStripes -cpu 1,2,4 -count 6 ./pkg/storage
func BenchmarkHeadAppendStripes(b *testing.B) {
	const series = 100_000
	for _, stripes := range []int{1024, 4096, tsdb.DefaultStripeSize} {
		b.Run(fmt.Sprint("stripes=", stripes), func(b *testing.B) {
			o := tsdb.DefaultOptions()
			o.StripeSize = stripes
			db, err := tsdb.Open(b.TempDir(), nil, nil, o, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			lsets := make([]labels.Labels, series)
			refs := make([]promstorage.SeriesRef, series)
			app := db.Appender(context.Background())
			for i := range lsets {
				lsets[i] = labels.FromStrings("__name__", "container_cpu_usage_seconds_total", "namespace", fmt.Sprint("ns", i%50), "pod", fmt.Sprint("pod", i))
				if refs[i], err = app.Append(0, lsets[i], 1, 1); err != nil {
					b.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			var ts atomic.Int64
			ts.Store(1)
			b.ReportAllocs()
			b.ResetTimer()
			// Each iteration a batch of 1,000 series of one transaction,
			// as a kubelet scrape is.
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t := ts.Add(1) * 1000
					start := int(t/1000) * 1000 % series
					app := db.Appender(context.Background())
					for i := start; i < start+1000; i++ {
						if _, err := app.Append(refs[i%series], lsets[i%series], t, float64(t)); err != nil {
							b.Fatal(err)
						}
					}
					if err := app.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
