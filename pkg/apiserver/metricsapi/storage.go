package metricsapi

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/rest"
)

// resourceInfo is what the two read-only resources share: their names and
// the empty objects the generic server decodes into.
type resourceInfo struct {
	resource   schema.GroupResource
	kind       string
	namespaced bool
	newObject  func() runtime.Object
	newList    func() runtime.Object
}

var (
	_ rest.Storage              = resourceInfo{}
	_ rest.KindProvider         = resourceInfo{}
	_ rest.Scoper               = resourceInfo{}
	_ rest.SingularNameProvider = resourceInfo{}
)

func (r resourceInfo) New() runtime.Object     { return r.newObject() }
func (r resourceInfo) NewList() runtime.Object { return r.newList() }
func (r resourceInfo) Destroy()                {}
func (r resourceInfo) Kind() string            { return r.kind }
func (r resourceInfo) NamespaceScoped() bool   { return r.namespaced }

// GetSingularName is empty, as metrics-server's: discovery then names
// neither resource by a singular (kubectl resolves them by kind).
func (r resourceInfo) GetSingularName() string { return "" }
