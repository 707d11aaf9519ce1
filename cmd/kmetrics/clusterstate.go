package main

import (
	"context"
	"slices"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kmetrics/kmetrics/pkg/kubestate"
	"github.com/kmetrics/kmetrics/pkg/scraper"
	"github.com/kmetrics/kmetrics/pkg/storage"
)

// clusterState is the cluster-state writer and the informers it owns.
type clusterState struct {
	writer *scraper.ClusterState
	// start starts the informers of its own; synced says, by resource, when
	// they have listed once.
	start  func(stop <-chan struct{})
	synced map[string]cache.InformerSynced
	// syncTimeout: syncTimeout, or shorter in tests.
	syncTimeout time.Duration
}

// syncTimeout bounds the wait for the first list of every resource: one the
// role does not let kmetrics list never syncs, and must not hold back the
// others' series.
const syncTimeout = time.Minute

// waitForCaches returns when every informer has listed once, or after
// syncTimeout, naming the resources that have not (false: ctx ended).
func (c *clusterState) waitForCaches(ctx context.Context) bool {
	deadline := time.Now().Add(c.syncTimeout)
	for {
		var pending []string
		for r, synced := range c.synced {
			if !synced() {
				pending = append(pending, r)
			}
		}
		if len(pending) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			slices.Sort(pending)
			klog.ErrorS(nil, "Cluster-state resources not listed yet; writing the others (grant list and watch on them, or leave them out of --cluster-state.resources)",
				"resources", pending, "waited", c.syncTimeout)
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

// newClusterState wires kube-state-metrics' families: pods, nodes and
// namespaces from the shared factory, every other enabled resource from
// informers of its own (trimmed to what the families read). Nil when
// --cluster-state is off: nothing is watched.
func newClusterState(o *options, cfg kubestate.Config, client kubernetes.Interface, restConfig *rest.Config,
	shared informers.SharedInformerFactory, db scraper.Appendable, families *storage.Metadata) (*clusterState, error) {
	if !o.clusterState {
		return nil, nil
	}
	mc, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	own := informers.NewSharedInformerFactory(client, 0)
	ownMeta := metadatainformer.NewSharedInformerFactory(mc, 0)
	src, synced, err := kubestate.Watches(cfg, own, ownMeta)
	if err != nil {
		return nil, err
	}
	on, _ := cfg.Enabled()
	if on["pods"] {
		src.Pods = shared.Core().V1().Pods().Lister()
	}
	if on["nodes"] {
		src.Nodes = shared.Core().V1().Nodes().Lister()
	}
	if on["namespaces"] {
		src.Namespaces = shared.Core().V1().Namespaces().Lister()
	}
	return &clusterState{
		writer: scraper.NewClusterState(kubestate.NewRenderer(cfg, src), db).WithMetadata(families),
		start: func(stop <-chan struct{}) {
			own.Start(stop)
			ownMeta.Start(stop)
		},
		synced:      synced,
		syncTimeout: syncTimeout,
	}, nil
}
