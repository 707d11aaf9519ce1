package storage

import (
	"bufio"
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// IndexSnapshotFile is the index snapshot's name in the TSDB directory (the
// TSDB ignores files that are not its own).
const IndexSnapshotFile = "kmetrics-index.snapshot"

const snapshotVersion = 1

// indexSnapshot is the index as written to disk: a restart serves kubectl
// top from it at once, before the TSDB has replayed its WAL.
type indexSnapshot struct {
	Version int
	Taken   time.Time
	Nodes   map[string]Usage
	Pods    []snapshotPod
}

type snapshotPod struct {
	Namespace, Name, Node string
	Containers            map[string]Usage
}

// WriteSnapshot writes the index to path atomically (a temporary file
// renamed over it): a crash mid-write leaves the previous snapshot.
func (x *Index) WriteSnapshot(path string, now time.Time) error {
	snap := indexSnapshot{Version: snapshotVersion, Taken: now}
	x.mu.RLock()
	snap.Nodes = make(map[string]Usage, len(x.nodes))
	for name, u := range x.nodes {
		snap.Nodes[name] = *u
	}
	snap.Pods = make([]snapshotPod, 0, len(x.pods))
	for key, p := range x.pods {
		sp := snapshotPod{Namespace: key.Namespace, Name: key.Name, Node: p.node, Containers: make(map[string]Usage, len(p.containers))}
		for c, u := range p.containers {
			sp.Containers[c] = *u
		}
		snap.Pods = append(snap.Pods, sp)
	}
	x.mu.RUnlock()

	tmp, err := os.CreateTemp(filepath.Dir(path), ".index-snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: a no-op
	w := bufio.NewWriter(tmp)
	if err := gob.NewEncoder(w).Encode(&snap); err != nil {
		tmp.Close()
		return fmt.Errorf("encoding the index snapshot: %w", err)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// LoadSnapshot fills the index from a snapshot taken no earlier than
// notBefore; an older one, a missing one or one of another version loads
// nothing. It reports what was loaded.
func (x *Index) LoadSnapshot(path string, notBefore time.Time) (nodes, pods int, taken time.Time, err error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return 0, 0, time.Time{}, nil
	}
	if err != nil {
		return 0, 0, time.Time{}, err
	}
	defer f.Close()
	var snap indexSnapshot
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&snap); err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("reading the index snapshot %s: %w", path, err)
	}
	if snap.Version != snapshotVersion || snap.Taken.Before(notBefore) {
		return 0, 0, snap.Taken, nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	// A node scraped since start is newer than the snapshot: its entry
	// and its pods stay as the scrape left them.
	scraped := make(map[string]bool, len(x.nodes))
	for name := range x.nodes {
		scraped[name] = true
	}
	for name, u := range snap.Nodes {
		if !scraped[name] {
			u := u
			x.nodes[name] = &u
		}
	}
	for _, sp := range snap.Pods {
		key := PodKey{sp.Namespace, sp.Name}
		if _, ok := x.pods[key]; ok || scraped[sp.Node] {
			continue
		}
		p := &podEntry{node: sp.Node, containers: make(map[string]*Usage, len(sp.Containers))}
		for c, u := range sp.Containers {
			u := u
			p.containers[c] = &u
		}
		x.pods[key] = p
		if x.podsByNode[sp.Node] == nil {
			x.podsByNode[sp.Node] = map[PodKey]struct{}{}
		}
		x.podsByNode[sp.Node][key] = struct{}{}
	}
	return len(snap.Nodes), len(snap.Pods), snap.Taken, nil
}
