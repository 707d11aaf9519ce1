package rules

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promrules "github.com/prometheus/prometheus/rules"
	promstorage "github.com/prometheus/prometheus/storage"
)

// Storage is what rules read and write: recording rules append their
// results, alerting rules their ALERTS series.
type Storage interface {
	promstorage.Appendable
	promstorage.Queryable
}

// Config says which rule files to evaluate and where alerts go.
type Config struct {
	// Files are paths or globs of Prometheus rule files.
	Files []string
	// Interval is the default evaluation interval of a group.
	Interval time.Duration
	// Alertmanagers are Alertmanager base URLs (http(s)://host:port[/prefix]).
	Alertmanagers []string
	// ExternalURL is what alerts link back to (GeneratorURL).
	ExternalURL string
	// QueryTimeout and MaxSamples bound one rule evaluation.
	QueryTimeout time.Duration
	MaxSamples   int
	// Confine is the namespace a rule file's rules are confined to (a
	// PrometheusRule's file: its rules read only that namespace's series);
	// false for a file whose rules read everything (--rules.file's).
	Confine func(file string) (namespace string, confined bool)
}

// Evaluator runs the rule and notification managers.
type Evaluator struct {
	cfg      Config
	rules    *promrules.Manager
	notifier *notifier.Manager
	amURLs   []*url.URL
	logger   *slog.Logger

	mu       sync.Mutex
	loaded   string // hash of the files last applied
	lastErr  error
	reloadCh chan struct{}
}

// New builds an evaluator; Run starts it.
func New(cfg Config, db Storage, reg prometheus.Registerer, logger *slog.Logger) (*Evaluator, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var amURLs []*url.URL
	for _, s := range cfg.Alertmanagers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--alertmanager.url %q: want http(s)://host:port[/path]", s)
		}
		amURLs = append(amURLs, u)
	}
	n := notifier.NewManager(&notifier.Options{QueueCapacity: 10000, Registerer: reg}, model.UTF8Validation, logger.With("component", "notifier"))
	if err := n.ApplyConfig(notifierConfig(amURLs)); err != nil {
		return nil, fmt.Errorf("configuring the notifier: %w", err)
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger: logger.With("component", "rule-query"), Timeout: cfg.QueryTimeout, MaxSamples: cfg.MaxSamples,
		LookbackDelta: 5 * time.Minute, EnableAtModifier: true, EnableNegativeOffset: true,
	})
	externalURL, _ := url.Parse(cfg.ExternalURL)
	m := promrules.NewManager(&promrules.ManagerOptions{
		ExternalURL: externalURL,
		QueryFunc:   confinedQueryFunc(engine, db, cfg.Confine),
		NotifyFunc:  promrules.SendAlerts(n, cfg.ExternalURL),
		Context:     context.Background(),
		Appendable:  db,
		Queryable:   db,
		Logger:      logger.With("component", "rules"),
		Registerer:  reg,
		// Alerts with for: survive a restart (state is kept in the TSDB).
		OutageTolerance: time.Hour,
		ForGracePeriod:  10 * time.Minute,
		ResendDelay:     time.Minute,
	})
	return &Evaluator{cfg: cfg, rules: m, notifier: n, amURLs: amURLs, logger: logger, reloadCh: make(chan struct{}, 1)}, nil
}

// notifierConfig has one Alertmanager set per URL (targets are fed directly
// by Run, there is no service discovery).
func notifierConfig(urls []*url.URL) *config.Config {
	cfg := config.DefaultConfig
	cfg.AlertingConfig.AlertmanagerConfigs = nil
	for _, u := range urls {
		am := config.DefaultAlertmanagerConfig
		am.Scheme = u.Scheme
		am.PathPrefix = u.Path
		am.ServiceDiscoveryConfigs = discovery.Configs{}
		cfg.AlertingConfig.AlertmanagerConfigs = append(cfg.AlertingConfig.AlertmanagerConfigs, &am)
	}
	return &cfg
}

// Run loads the rules, then evaluates them until ctx ends, reloading when a
// file changes (checked every few seconds) or Reload is called (SIGHUP).
func (e *Evaluator) Run(ctx context.Context) {
	tsets := make(chan map[string][]*targetgroup.Group, 1)
	groups := map[string][]*targetgroup.Group{}
	for i, u := range e.amURLs {
		groups[fmt.Sprintf("config-%d", i)] = []*targetgroup.Group{{
			Source:  u.String(),
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
		}}
	}
	tsets <- groups
	go e.notifier.Run(tsets)
	if err := e.reload(); err != nil {
		e.logger.Error("Loading rule files", "err", err)
	}
	go e.rules.Run()

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			e.rules.Stop()
			e.notifier.Stop()
			return
		case <-tick.C:
		case <-e.reloadCh:
		}
		if err := e.reload(); err != nil {
			e.logger.Error("Reloading rule files: keeping the rules in force", "err", err)
		}
	}
}

// Reload asks Run to reload the rule files now.
func (e *Evaluator) Reload() {
	select {
	case e.reloadCh <- struct{}{}:
	default:
	}
}

// reload applies the rule files if they changed since the last attempt. An
// invalid file is refused as a whole: the rules in force stay.
func (e *Evaluator) reload() error {
	files, hash, err := e.files()
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if hash == e.loaded {
		return e.lastErr
	}
	e.loaded = hash
	e.lastErr = validate(files, e.logger)
	if e.lastErr == nil {
		e.lastErr = e.rules.Update(e.cfg.Interval, files, labels.EmptyLabels(), e.cfg.ExternalURL, nil)
	}
	if e.lastErr == nil {
		e.logger.Info("Loaded rule files", "files", files, "groups", len(e.rules.RuleGroups()))
	}
	return e.lastErr
}

// LastError is the error of the last reload attempt (nil once valid).
func (e *Evaluator) LastError() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastErr
}

// files expands the globs and hashes the files' names and contents.
func (e *Evaluator) files() ([]string, string, error) {
	var files []string
	for _, g := range e.cfg.Files {
		m, err := filepath.Glob(g)
		if err != nil {
			return nil, "", fmt.Errorf("rule file pattern %q: %w", g, err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return files, fmt.Sprintf("%x", h.Sum(nil)), nil
}

// RuleGroups and AlertingRules serve /api/v1/rules and /api/v1/alerts.
func (e *Evaluator) RuleGroups() []*promrules.Group { return e.rules.RuleGroups() }

// AlertingRules returns every alerting rule loaded.
func (e *Evaluator) AlertingRules() []*promrules.AlertingRule { return e.rules.AlertingRules() }

// Alertmanagers lists the Alertmanagers alerts go to.
func (e *Evaluator) Alertmanagers() []*url.URL { return e.notifier.Alertmanagers() }

// DroppedAlertmanagers is always empty: there is no discovery.
func (e *Evaluator) DroppedAlertmanagers() []*url.URL { return nil }

// validate parses every file as Prometheus would, so that an error names the
// file, line and problem (the rule manager only says it kept the old rules).
func validate(files []string, logger *slog.Logger) error {
	var errs []error
	p := parser.NewParser(parser.Options{})
	for _, f := range files {
		_, ferrs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, logger)
		errs = append(errs, ferrs...)
	}
	return errors.Join(errs...)
}
