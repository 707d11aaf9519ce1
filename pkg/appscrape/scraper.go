// Package appscrape scrapes applications with Prometheus' own scrape
// manager and service discovery, configured in Prometheus' scrape_configs
// format: the built-in kubernetes-pods and kubernetes-service-endpoints
// jobs (over kmetrics' shared informers) and an operator's own
// --scrape.config. Everything is written through the storage guard, with
// each namespace's series charged to its budget.
package appscrape

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/scrape"
	promstorage "github.com/prometheus/prometheus/storage"

	// The service discovery mechanisms an operator's scrape_configs may
	// use: Kubernetes, files, HTTP and DNS (the cloud ones stay out: they
	// would double the binary for clusters that do not need them).
	_ "github.com/prometheus/prometheus/discovery/dns"
	_ "github.com/prometheus/prometheus/discovery/file"
	_ "github.com/prometheus/prometheus/discovery/http"
	_ "github.com/prometheus/prometheus/discovery/kubernetes"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// Deps are what the scraper writes to and reads from.
type Deps struct {
	Informers *Informers
	// Storage is the guard in front of the TSDB.
	Storage promstorage.Appendable
	// Budget, when set, bounds each namespace's head series.
	Budget *storage.SeriesBudget
	// Metadata, when set, records the families of successful scrapes.
	Metadata   *storage.Metadata
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Scraper runs Prometheus' discovery and scrape managers.
type Scraper struct {
	cfg       Config
	deps      Deps
	app       *tenantAppendable
	discovery *discovery.Manager
	scrape    *scrape.Manager
	cancel    context.CancelFunc

	mu      sync.Mutex
	current *config.Config
	file    *config.Config   // --scrape.config as last loaded
	extra   map[string][]Job // by source
}

var registerEvents sync.Once

// New validates the configuration (an invalid --scrape.config stops
// kmetrics at start) and builds the managers; Run starts them.
func New(c Config, d Deps) (*Scraper, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	file, err := loadFile(c, d.Logger)
	if err != nil {
		return nil, err
	}
	cfg, err := assemble(c, file, d.Informers, nil, d.Logger)
	if err != nil {
		return nil, err
	}
	noteReload(true)
	registerEvents.Do(func() { _ = d.Registerer.Register(discoveryEvents) })
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var opts []func(*discovery.Manager)
	if c.updateEvery > 0 {
		opts = append(opts, discovery.Updatert(c.updateEvery))
	}
	dm := discovery.NewManager(ctx, d.Logger.With("component", "discovery"), d.Registerer, sdMetrics, opts...)
	if dm == nil {
		cancel()
		return nil, fmt.Errorf("creating the discovery manager")
	}
	app := newTenantAppendable(d.Storage, d.Budget, d.Metadata)
	sm, err := scrape.NewManager(&scrape.Options{
		// The target in the appender's context names its tenant.
		PassMetadataInContext:   true,
		DiscoveryReloadInterval: model.Duration(c.updateEvery),
	}, d.Logger.With("component", "scrape"), nil, app, nil, d.Registerer)
	if err != nil {
		cancel()
		return nil, err
	}
	return &Scraper{cfg: c, deps: d, app: app, discovery: dm, scrape: sm, cancel: cancel, current: cfg, file: file, extra: map[string][]Job{}}, nil
}

// Run scrapes until ctx ends, then stops every scrape loop.
func (s *Scraper) Run(ctx context.Context) {
	defer s.cancel()
	s.mu.Lock()
	err := s.apply(s.current, s.file)
	s.mu.Unlock()
	if err != nil {
		s.deps.Logger.Error("Applying the scrape configuration", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = s.discovery.Run()
	}()
	go func() {
		defer wg.Done()
		_ = s.scrape.Run(s.discovery.SyncCh())
	}()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.scrape.Stop()
			s.cancel()
			wg.Wait()
			return
		case <-tick.C:
			s.sweep()
		}
	}
}

func (s *Scraper) apply(cfg, file *config.Config) error {
	s.app.setConfined(confinedJobs(cfg, file))
	if err := s.scrape.ApplyConfig(cfg); err != nil {
		return err
	}
	jobs, err := cfg.GetScrapeConfigs()
	if err != nil {
		return err
	}
	sd := make(map[string]discovery.Configs, len(jobs))
	for _, j := range jobs {
		sd[j.JobName] = j.ServiceDiscoveryConfigs
	}
	return s.discovery.ApplyConfig(sd)
}

// Reload rereads --scrape.config. An invalid file is refused with the
// error (file and line) and the running configuration kept.
func (s *Scraper) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	file, err := loadFile(s.cfg, s.deps.Logger)
	if err != nil {
		noteReload(false)
		return err
	}
	cfg, err := assemble(s.cfg, file, s.deps.Informers, s.extraJobs(), s.deps.Logger)
	if err != nil {
		noteReload(false)
		return err
	}
	if err := s.apply(cfg, file); err != nil {
		noteReload(false)
		return err
	}
	s.current, s.file = cfg, file
	noteReload(true)
	return nil
}

// SetJobs replaces the jobs of one source (e.g. ServiceMonitors) and
// applies them with the rest of the configuration. A running scrape of an
// unchanged job is not restarted.
func (s *Scraper) SetJobs(source string, jobs []Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra[source] = jobs
	// --scrape.config as it was last loaded: a file being edited does not
	// hold monitors back, and is not applied before it is reloaded.
	cfg, err := assemble(s.cfg, s.file, s.deps.Informers, s.extraJobs(), s.deps.Logger)
	if err != nil {
		return err
	}
	if err := s.apply(cfg, s.file); err != nil {
		return err
	}
	s.current = cfg
	return nil
}

func (s *Scraper) extraJobs() []Job {
	sources := make([]string, 0, len(s.extra))
	for src := range s.extra {
		sources = append(sources, src)
	}
	sort.Strings(sources)
	var out []Job
	for _, src := range sources {
		out = append(out, s.extra[src]...)
	}
	return out
}

func noteReload(ok bool) {
	if !ok {
		configReloadSuccessful.Set(0)
		return
	}
	configReloadSuccessful.Set(1)
	configReloadTime.SetToCurrentTime()
}

// TargetsActive are the targets being scraped, by job.
func (s *Scraper) TargetsActive() map[string][]*scrape.Target { return s.scrape.TargetsActive() }

// TargetsDropped are the discovered targets relabeling dropped, by job.
func (s *Scraper) TargetsDropped() map[string][]*scrape.Target { return s.scrape.TargetsDropped() }

// TargetsDroppedCounts counts the dropped targets, by job.
func (s *Scraper) TargetsDroppedCounts() map[string]int { return s.scrape.TargetsDroppedCounts() }

// ScrapePoolConfig is the configuration of a job (for /targets/metadata).
func (s *Scraper) ScrapePoolConfig(job string) (*config.ScrapeConfig, error) {
	return s.scrape.ScrapePoolConfig(job)
}

// sweep counts the targets per job and forgets the refusals of targets
// that went away.
func (s *Scraper) sweep() {
	live := map[string]bool{}
	applicationTargets.Reset()
	for job, targets := range s.scrape.TargetsActive() {
		applicationTargets.WithLabelValues(job).Set(float64(len(targets)))
		for _, t := range targets {
			ns, pod := tenantOf(t)
			live[ns+"/"+pod] = true
		}
	}
	s.app.forgetAllBut(live)
}
