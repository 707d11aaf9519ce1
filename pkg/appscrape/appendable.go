package appscrape

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
	promstorage "github.com/prometheus/prometheus/storage"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// Discovered labels that name a target's tenant.
const (
	metaNamespace = "__meta_kubernetes_namespace"
	metaPod       = "__meta_kubernetes_pod_name"
)

// reasonSeriesBudget is the refusal reason of a scrape whose new series do
// not fit its namespace's budget.
const reasonSeriesBudget = "series_budget"

// tenantAppendable is what Prometheus' scrape manager writes through: the
// guard in front of the TSDB (future samples refused alone), plus what
// Prometheus lacks — each target's new series are charged to its
// namespace's budget, and a series that does not fit fails the whole scrape
// (as sample_limit does: rolled back, up 0, the error on the target), so one
// tenant cannot fill the head every other tenant and the HPA share.
// Metadata is recorded from scrapes that succeeded only.
type tenantAppendable struct {
	next   promstorage.Appendable
	budget *storage.SeriesBudget // nil: no budget
	meta   *storage.Metadata     // nil: no metadata store

	mu      sync.Mutex
	refused map[string]bool // namespace/pod → its last scrape was refused
	// confined are the jobs whose series get their target's namespace
	// (namespacelabel.go).
	confined map[string]bool
}

var _ promstorage.Appendable = (*tenantAppendable)(nil)

func newTenantAppendable(next promstorage.Appendable, budget *storage.SeriesBudget, meta *storage.Metadata) *tenantAppendable {
	return &tenantAppendable{next: next, budget: budget, meta: meta, refused: map[string]bool{}}
}

// Appender starts one scrape's transaction. The scrape manager passes the
// target in ctx (Options.PassMetadataInContext); the tenant is the
// namespace the target was discovered in, whatever relabeling made of its
// labels, so a target cannot pick another tenant's budget.
func (a *tenantAppendable) Appender(ctx context.Context) promstorage.Appender {
	app := &tenantAppender{Appender: a.next.Appender(ctx), parent: a, now: time.Now().UnixMilli()}
	if t, ok := scrape.TargetFromContext(ctx); ok {
		app.target = t
		app.targetLabels = t.Labels(labels.NewBuilder(labels.EmptyLabels()))
		app.namespace, app.pod = tenantOf(t)
		d := t.DiscoveredLabels(labels.NewBuilder(labels.EmptyLabels()))
		a.mu.Lock()
		confined := a.confined[d.Get(model.JobLabel)]
		a.mu.Unlock()
		if ns := d.Get(metaNamespace); confined && ns != "" {
			app.confineTo = ns
			app.targetLabels = withNamespace(app.targetLabels, ns)
		}
	}
	return app
}

// setConfined names the jobs whose series get their target's namespace.
func (a *tenantAppendable) setConfined(jobs map[string]bool) {
	a.mu.Lock()
	a.confined = jobs
	a.mu.Unlock()
}

// confine is l with its target's namespace, for a confined job.
func (a *tenantAppender) confine(l labels.Labels) labels.Labels {
	if a.confineTo == "" {
		return l
	}
	return withNamespace(l, a.confineTo)
}

// tenantOf names a target's tenant: the namespace it was discovered in
// ("" outside Kubernetes discovery), and its pod (or instance, without one).
func tenantOf(t *scrape.Target) (namespace, pod string) {
	d := t.DiscoveredLabels(labels.NewBuilder(labels.EmptyLabels()))
	namespace, pod = d.Get(metaNamespace), d.Get(metaPod)
	if tenant := d.Get(metaTenant); tenant != "" {
		namespace = tenant // a monitor's targets are charged to the monitor's namespace
	}
	if pod == "" {
		pod = t.Labels(labels.NewBuilder(labels.EmptyLabels())).Get(model.InstanceLabel)
	}
	return namespace, pod
}

type tenantAppender struct {
	promstorage.Appender
	parent         *tenantAppendable
	target         *scrape.Target
	targetLabels   labels.Labels
	namespace, pod string
	confineTo      string // the namespace label every series gets; "" keeps theirs
	now            int64
	refusal        error

	// charged are the hashes of every budgeted series of the transaction,
	// charged at commit; held back are the samples of series the budget
	// does not hold yet. They are appended only once the whole scrape is
	// known to fit: a refused scrape creates no series at all.
	charged  []uint64
	heldBack []heldSample
	pending  map[uint64]bool
}

// heldSample is one append of a series new to the budget, replayed at
// commit.
type heldSample struct {
	l        labels.Labels
	t, st    int64
	v        float64
	h        *histogram.Histogram
	fh       *histogram.FloatHistogram
	stZero   bool
	exemplar *exemplar.Exemplar
}

// reportSeries are the series the scrape loop writes about a target (up,
// scrape_*): never charged, so a target refused for its budget still says
// up 0 and why.
var reportSeries = map[string]bool{
	"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true,
	"scrape_samples_post_metric_relabeling": true, "scrape_series_added": true,
	"scrape_timeout_seconds": true, "scrape_sample_limit": true, "scrape_body_size_bytes": true,
}

// isReport: a report series carries the target's labels and nothing else
// (a target exposing "scrape_series_added{id=…}" is charged like any
// other series).
func (a *tenantAppender) isReport(l labels.Labels) bool {
	if !reportSeries[l.Get(labels.MetricName)] || l.Len() != a.targetLabels.Len()+1 {
		return false
	}
	same := true
	a.targetLabels.Range(func(t labels.Label) {
		if same && l.Get(t.Name) != t.Value {
			same = false
		}
	})
	return same
}

// admit decides what happens to one append: forward it now (the budget
// holds the series, or there is no budget), hold it back until commit (a
// series new to the budget that fits beside the others so far), or fail
// the scrape (it does not fit).
func (a *tenantAppender) admit(l labels.Labels) (holdBack bool, err error) {
	b := a.parent.budget
	if b == nil || a.target == nil || a.isReport(l) {
		return false, nil
	}
	if a.refusal != nil {
		return false, a.refusal
	}
	hash := l.Hash()
	if a.pending[hash] {
		return true, nil // a second sample of a held-back series
	}
	held, err := b.Check(a.namespace, hash, len(a.pending))
	if err != nil {
		a.refusal = err
		a.parent.noteRefusal(a.namespace, a.pod, err)
		return false, err
	}
	a.charged = append(a.charged, hash)
	if held {
		return false, nil
	}
	if a.pending == nil {
		a.pending = map[uint64]bool{}
	}
	a.pending[hash] = true
	return true, nil
}

// A held-back append returns reference 0, which the scrape loop does not
// cache: its next scrape appends by labels, and finds the series.
func (a *tenantAppender) Append(ref promstorage.SeriesRef, l labels.Labels, t int64, v float64) (promstorage.SeriesRef, error) {
	l = a.confine(l)
	if hold, err := a.admit(l); err != nil || hold {
		if hold {
			a.heldBack = append(a.heldBack, heldSample{l: l, t: t, v: v})
		}
		return 0, err
	}
	return a.Appender.Append(ref, l, t, v)
}

func (a *tenantAppender) AppendHistogram(ref promstorage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	l = a.confine(l)
	if hold, err := a.admit(l); err != nil || hold {
		if hold {
			a.heldBack = append(a.heldBack, heldSample{l: l, t: t, h: h, fh: fh})
		}
		return 0, err
	}
	return a.Appender.AppendHistogram(ref, l, t, h, fh)
}

func (a *tenantAppender) AppendSTZeroSample(ref promstorage.SeriesRef, l labels.Labels, t, st int64) (promstorage.SeriesRef, error) {
	l = a.confine(l)
	if hold, err := a.admit(l); err != nil || hold {
		if hold {
			a.heldBack = append(a.heldBack, heldSample{l: l, t: t, st: st, stZero: true})
		}
		return 0, err
	}
	return a.Appender.AppendSTZeroSample(ref, l, t, st)
}

func (a *tenantAppender) AppendHistogramSTZeroSample(ref promstorage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	l = a.confine(l)
	if hold, err := a.admit(l); err != nil || hold {
		if hold {
			a.heldBack = append(a.heldBack, heldSample{l: l, t: t, st: st, h: h, fh: fh, stZero: true})
		}
		return 0, err
	}
	return a.Appender.AppendHistogramSTZeroSample(ref, l, t, st, h, fh)
}

func (a *tenantAppender) AppendExemplar(ref promstorage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (promstorage.SeriesRef, error) {
	l = a.confine(l)
	if ref == 0 && a.pending[l.Hash()] {
		a.heldBack = append(a.heldBack, heldSample{l: l, exemplar: &e})
		return 0, nil
	}
	return a.Appender.AppendExemplar(ref, l, e)
}

// replay appends the held-back samples; the first error fails the
// transaction, as it would have failed the scrape.
func (a *tenantAppender) replay() error {
	for _, s := range a.heldBack {
		var err error
		switch {
		case s.exemplar != nil:
			_, err = a.Appender.AppendExemplar(0, s.l, *s.exemplar)
			err = nil // exemplars never fail a scrape, as in Prometheus
		case s.stZero && (s.h != nil || s.fh != nil):
			_, err = a.Appender.AppendHistogramSTZeroSample(0, s.l, s.t, s.st, s.h, s.fh)
		case s.stZero:
			_, err = a.Appender.AppendSTZeroSample(0, s.l, s.t, s.st)
		case s.h != nil || s.fh != nil:
			_, err = a.Appender.AppendHistogram(0, s.l, s.t, s.h, s.fh)
		default:
			_, err = a.Appender.Append(0, s.l, s.t, s.v)
		}
		if err != nil && !errors.Is(err, promstorage.ErrOutOfBounds) && !errors.Is(err, promstorage.ErrOutOfOrderSample) &&
			!errors.Is(err, promstorage.ErrDuplicateSampleForTimestamp) && !errors.Is(err, promstorage.ErrOutOfOrderST) {
			return err
		}
	}
	return nil
}

// Commit charges the transaction's series and stores it. Charging here,
// all at once, also settles two scrapes of one namespace racing for its
// last series: the later one is refused. The scrape loop reports the
// target's health before it commits, so a healthy target here is a scrape
// taken whole: only then is its metadata recorded and a refusal over.
func (a *tenantAppender) Commit() error {
	if b := a.parent.budget; b != nil && len(a.charged) > 0 {
		if err := b.Admit(a.namespace, a.charged, a.now); err != nil {
			_ = a.Appender.Rollback()
			a.parent.noteRefusal(a.namespace, a.pod, err)
			return err
		}
	}
	if err := a.replay(); err != nil {
		_ = a.Appender.Rollback()
		return err
	}
	if err := a.Appender.Commit(); err != nil {
		return err
	}
	if a.target == nil || a.target.Health() != scrape.HealthGood {
		return nil
	}
	a.parent.noteAccepted(a.namespace, a.pod)
	if a.parent.meta != nil {
		a.parent.recordMetadata(a.target)
	}
	return nil
}

func (a *tenantAppendable) recordMetadata(t *scrape.Target) {
	list := t.ListMetadata()
	updates := make([]storage.MetadataUpdate, 0, 2*len(list))
	for _, m := range list {
		if m.Type != "" {
			updates = append(updates, storage.MetadataUpdate{Kind: storage.MetadataType, Family: m.MetricFamily, Value: string(m.Type)})
		}
		if m.Help != "" {
			updates = append(updates, storage.MetadataUpdate{Kind: storage.MetadataHelp, Family: m.MetricFamily, Value: m.Help})
		}
		if m.Unit != "" {
			updates = append(updates, storage.MetadataUpdate{Kind: storage.MetadataUnit, Family: m.MetricFamily, Value: m.Unit})
		}
	}
	a.meta.Apply(updates, false)
}

// noteRefusal counts a refused scrape and logs it once per change of the
// target's state: a hostile target must not flood the log.
func (a *tenantAppendable) noteRefusal(namespace, pod string, err error) {
	applicationRefused.WithLabelValues(namespace, pod, reasonSeriesBudget).Inc()
	a.mu.Lock()
	logged := a.refused[namespace+"/"+pod]
	a.refused[namespace+"/"+pod] = true
	a.mu.Unlock()
	if !logged {
		klog.ErrorS(err, "Refused an application scrape", "namespace", namespace, "pod", pod, "reason", reasonSeriesBudget)
	}
}

func (a *tenantAppendable) noteAccepted(namespace, pod string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refused[namespace+"/"+pod] {
		delete(a.refused, namespace+"/"+pod)
		klog.InfoS("Application scrapes accepted again", "namespace", namespace, "pod", pod)
	}
}

// forgetAllBut drops what is kept about targets that went away (their
// refusal state and counter).
func (a *tenantAppendable) forgetAllBut(live map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key := range a.refused {
		if !live[key] {
			delete(a.refused, key)
			ns, pod, _ := strings.Cut(key, "/")
			applicationRefused.DeleteLabelValues(ns, pod, reasonSeriesBudget)
		}
	}
}
