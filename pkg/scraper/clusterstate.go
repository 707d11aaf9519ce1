package scraper

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/kmetrics/kmetrics/pkg/storage"
)

// JobClusterState is the job of the cluster-state series, as dashboards
// built for kube-state-metrics select them.
const JobClusterState = "kube-state-metrics"

// ClusterState writes the subset of kube-state-metrics' series that the
// kubernetes-mixin dashboards join on, from informers kmetrics runs anyway,
// every resolution. The series are rendered as an exposition and stored
// through the same path as a scrape (whole or nothing, staleness markers for
// objects that went away).
type ClusterState struct {
	pods       corelisters.PodLister
	nodes      corelisters.NodeLister
	namespaces corelisters.NamespaceLister
	db         Appendable
	target     *target
	buf        bytes.Buffer
}

// NewClusterState builds the writer; Run starts it.
func NewClusterState(pods corelisters.PodLister, nodes corelisters.NodeLister, namespaces corelisters.NamespaceLister, db Appendable) *ClusterState {
	return &ClusterState{
		pods: pods, nodes: nodes, namespaces: namespaces, db: db,
		target: newTargetWithLabels(labels.FromStrings(storage.LabelJob, JobClusterState, storage.LabelInstance, "kmetrics")),
	}
}

// WithMetadata records the families' type and help in m.
func (c *ClusterState) WithMetadata(m *storage.Metadata) *ClusterState {
	c.target.meta, c.target.metaTrusted = m, true
	return c
}

// Run writes the series every interval until ctx ends.
func (c *ClusterState) Run(ctx context.Context, interval time.Duration) {
	runEvery(ctx, interval, "Writing cluster-state series", c.writeOnce)
}

func (c *ClusterState) writeOnce(ctx context.Context, now time.Time) error {
	c.buf.Reset()
	if err := c.render(&c.buf); err != nil {
		return err
	}
	return storeExposition(ctx, c.db, c.target, c.buf.Bytes(), now)
}

var podPhases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

// render writes the exposition, with kube-state-metrics' names, labels and
// units (CPU in cores, memory in bytes).
func (c *ClusterState) render(b *bytes.Buffer) error {
	pods, err := c.pods.List(k8slabels.Everything())
	if err != nil {
		return err
	}
	nodes, err := c.nodes.List(k8slabels.Everything())
	if err != nil {
		return err
	}
	namespaces, err := c.namespaces.List(k8slabels.Everything())
	if err != nil {
		return err
	}
	for _, p := range pods {
		podLabels := []string{"namespace", p.Namespace, "pod", p.Name, "uid", string(p.UID)}
		createdByKind, createdByName := "<none>", "<none>"
		for _, o := range p.OwnerReferences {
			isController := o.Controller != nil && *o.Controller
			if isController {
				createdByKind, createdByName = o.Kind, o.Name
			}
			sample(b, "kube_pod_owner", 1, append(podLabels, "owner_kind", o.Kind, "owner_name", o.Name, "owner_is_controller", strconv.FormatBool(isController))...)
		}
		if len(p.OwnerReferences) == 0 {
			sample(b, "kube_pod_owner", 1, append(podLabels, "owner_kind", "<none>", "owner_name", "<none>", "owner_is_controller", "<none>")...)
		}
		sample(b, "kube_pod_info", 1, append(podLabels, "host_ip", p.Status.HostIP, "pod_ip", p.Status.PodIP, "node", p.Spec.NodeName,
			"created_by_kind", createdByKind, "created_by_name", createdByName, "priority_class", p.Spec.PriorityClassName,
			"host_network", strconv.FormatBool(p.Spec.HostNetwork))...)
		for _, phase := range podPhases {
			sample(b, "kube_pod_status_phase", boolValue(p.Status.Phase == phase), append(podLabels, "phase", string(phase))...)
		}
		for _, ct := range p.Spec.Containers {
			cl := append(podLabels, "container", ct.Name, "node", p.Spec.NodeName)
			resources(b, "kube_pod_container_resource_requests", ct.Resources.Requests, cl)
			resources(b, "kube_pod_container_resource_limits", ct.Resources.Limits, cl)
		}
	}
	for _, n := range nodes {
		internalIP := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				internalIP = a.Address
				break
			}
		}
		i := n.Status.NodeInfo
		sample(b, "kube_node_info", 1, "node", n.Name, "kernel_version", i.KernelVersion, "os_image", i.OSImage,
			"container_runtime_version", i.ContainerRuntimeVersion, "kubelet_version", i.KubeletVersion,
			"provider_id", n.Spec.ProviderID, "pod_cidr", n.Spec.PodCIDR, "internal_ip", internalIP, "system_uuid", i.SystemUUID)
		resources(b, "kube_node_status_allocatable", n.Status.Allocatable, []string{"node", n.Name})
		resources(b, "kube_node_status_capacity", n.Status.Capacity, []string{"node", n.Name})
	}
	for _, ns := range namespaces {
		for _, phase := range []corev1.NamespacePhase{corev1.NamespaceActive, corev1.NamespaceTerminating} {
			sample(b, "kube_namespace_status_phase", boolValue(ns.Status.Phase == phase), "namespace", ns.Name, "phase", string(phase))
		}
	}
	return nil
}

// resources writes one series per resource, in kube-state-metrics' units.
func resources(b *bytes.Buffer, name string, rl corev1.ResourceList, lbls []string) {
	for res, q := range rl {
		unit, v := resourceValue(res, q)
		sample(b, name, v, append(lbls[:len(lbls):len(lbls)], "resource", sanitizeResource(string(res)), "unit", unit)...)
	}
}

func resourceValue(res corev1.ResourceName, q resource.Quantity) (string, float64) {
	switch res {
	case corev1.ResourceCPU:
		return "core", float64(q.MilliValue()) / 1000
	case corev1.ResourceMemory, corev1.ResourceStorage, corev1.ResourceEphemeralStorage:
		return "byte", float64(q.Value())
	case corev1.ResourcePods:
		return "integer", float64(q.Value())
	}
	return "integer", float64(q.Value())
}

// sanitizeResource turns extended resource names (nvidia.com/gpu) into label
// values the way kube-state-metrics does.
func sanitizeResource(s string) string {
	return strings.NewReplacer(".", "_", "/", "_", "-", "_").Replace(s)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sample writes one exposition line; kv are label name/value pairs.
func sample(b *bytes.Buffer, name string, v float64, kv ...string) {
	b.WriteString(name)
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		escapeLabelValue(b, kv[i+1])
		b.WriteByte('"')
	}
	b.WriteString("} ")
	b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	b.WriteByte('\n')
}

// escapeLabelValue escapes as the text format requires: \\, \" and \n.
func escapeLabelValue(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(s[i])
		}
	}
}
