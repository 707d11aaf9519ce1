package provider

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// discoverySnapshot is the last discovery list, on disk: after a restart
// the custom and external metrics groups list what they served before
// while the TSDB replays its WAL, so discovery never goes empty (client-go
// breaks on an empty group) and readiness does not wait for the TSDB.
type discoverySnapshot struct {
	Custom   []cmprovider.CustomMetricInfo
	External []cmprovider.ExternalMetricInfo
}

// errNoHistoryYet answers a metric request while the catalog is only a
// snapshot: the HPA retries; it is not told the metric does not exist.
var errNoHistoryYet = apierrors.NewServiceUnavailable("kmetrics is starting: the TSDB is still opening (replaying its WAL); custom and external metrics are served once it is open")

// SaveDiscovery writes the current discovery lists to path (atomically);
// a catalog loaded from a snapshot is not written back.
func (p *MetricsProvider) SaveDiscovery(path string) error {
	c := p.catalog.Load()
	if c.snapshot || len(c.customList)+len(c.externalList) == 0 {
		return nil
	}
	b, err := json.Marshal(discoverySnapshot{Custom: c.customList, External: c.externalList})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".discovery-snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// LoadDiscovery lists what a snapshot holds until the first discovery from
// the TSDB replaces it. A missing file loads nothing.
func (p *MetricsProvider) LoadDiscovery(path string) (int, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var snap discoverySnapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return 0, fmt.Errorf("reading the discovery snapshot %s: %w", path, err)
	}
	c := &catalog{custom: map[customKey][]source{}, external: map[string][]source{}, snapshot: true,
		customList: snap.Custom, externalList: snap.External}
	// Only if discovery has not run yet.
	if p.catalog.CompareAndSwap(p.catalog.Load(), c) && len(c.customList)+len(c.externalList) > 0 {
		return len(c.customList) + len(c.externalList), nil
	}
	return 0, nil
}
