package provider

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// informerObjects lists objects from metadata informers: pods from the
// running-pod informer the server already has, any other resource from an
// informer started on its first request and kept (the HPA asks again every
// 15 s).
type informerObjects struct {
	pods    cache.GenericLister
	factory metadatainformer.SharedInformerFactory
	mapper  meta.RESTMapper
	stop    <-chan struct{}

	mu      sync.Mutex
	started map[schema.GroupVersionResource]bool
}

var _ ObjectLister = (*informerObjects)(nil)

var podsGR = schema.GroupResource{Resource: "pods"}

// NewInformerObjects lists pods from pods and other resources from informers
// of factory, which run until stop closes.
func NewInformerObjects(pods cache.GenericLister, factory metadatainformer.SharedInformerFactory, mapper meta.RESTMapper, stop <-chan struct{}) ObjectLister {
	return &informerObjects{pods: pods, factory: factory, mapper: mapper, stop: stop, started: map[schema.GroupVersionResource]bool{}}
}

func (o *informerObjects) List(ctx context.Context, gr schema.GroupResource, namespace string, selector k8slabels.Selector) ([]string, error) {
	lister := o.pods
	if gr != podsGR {
		gvr, err := o.mapper.ResourceFor(gr.WithVersion(""))
		if err != nil {
			return nil, err
		}
		if lister, err = o.informer(ctx, gvr); err != nil {
			return nil, err
		}
	}
	var objs []runtime.Object
	var err error
	if namespace != "" {
		objs, err = lister.ByNamespace(namespace).List(selector)
	} else {
		objs, err = lister.List(selector)
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(objs))
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, err
		}
		names = append(names, m.GetName())
	}
	return names, nil
}

// informer returns the synced lister of gvr, starting its informer first.
func (o *informerObjects) informer(ctx context.Context, gvr schema.GroupVersionResource) (cache.GenericLister, error) {
	inf := o.factory.ForResource(gvr)
	o.mu.Lock()
	if !o.started[gvr] {
		o.started[gvr] = true
		o.factory.Start(o.stop)
	}
	o.mu.Unlock()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return nil, fmt.Errorf("cache of %s not synced", gvr.GroupResource())
	}
	return inf.Lister(), nil
}
