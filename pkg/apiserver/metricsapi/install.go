package metricsapi

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/metrics/pkg/apis/metrics"
	"k8s.io/metrics/pkg/apis/metrics/install"
	metricsv1 "k8s.io/metrics/pkg/apis/metrics/v1"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

var (
	// Scheme holds the internal, v1 and v1beta1 types of metrics.k8s.io,
	// with v1 preferred (k8s.io/metrics' own install).
	Scheme = runtime.NewScheme()
	// Codecs serves them (JSON, YAML, protobuf).
	Codecs = serializer.NewCodecFactory(Scheme)
)

// Versions are the served versions, preferred first.
var Versions = []schema.GroupVersion{metricsv1.SchemeGroupVersion, v1beta1.SchemeGroupVersion}

func init() {
	install.Install(Scheme)
	// Status, ListOptions and the other unversioned meta types.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
}

// MetricsGetter answers usage for the objects the API lists. Objects left
// out of the answer have no usage (404 for a get, absent from a list).
type MetricsGetter interface {
	GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error)
	GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error)
}

// Install adds metrics.k8s.io, every version in Versions, to server. Pods
// and nodes are listed from the given listers (pods as metadata only);
// nodeSelector further restricts the nodes served.
func Install(server *genericapiserver.GenericAPIServer, m MetricsGetter, pods cache.GenericLister, nodes corelisters.NodeLister, nodeSelector []labels.Requirement) error {
	info := genericapiserver.NewDefaultAPIGroupInfo(metrics.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	resources := map[string]rest.Storage{
		"nodes": newNodeStorage(m, nodes, nodeSelector),
		"pods":  newPodStorage(m, pods),
	}
	for _, gv := range Versions {
		info.VersionedResourcesStorageMap[gv.Version] = resources
	}
	return server.InstallAPIGroup(&info)
}
