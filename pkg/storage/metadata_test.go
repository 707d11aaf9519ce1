package storage

import (
	"fmt"
	"strings"
	"testing"
)

func TestMetadataTrustAndBounds(t *testing.T) {
	m := NewMetadata()
	m.max = 3
	m.Apply([]MetadataUpdate{
		{Kind: MetadataType, Family: "container_cpu_usage_seconds_total", Value: "counter"},
		{Kind: MetadataHelp, Family: "container_cpu_usage_seconds_total", Value: "kubelet's help"},
	}, true)
	// An application redescribing a kubelet family changes nothing.
	m.Apply([]MetadataUpdate{
		{Kind: MetadataType, Family: "container_cpu_usage_seconds_total", Value: "gauge"},
		{Kind: MetadataHelp, Family: "container_cpu_usage_seconds_total", Value: "lies"},
		{Kind: MetadataHelp, Family: "app_total", Value: strings.Repeat("x", 5000)},
	}, false)
	for i := 0; i < 10; i++ {
		m.Apply([]MetadataUpdate{{Kind: MetadataType, Family: fmt.Sprintf("bomb_%d", i), Value: "gauge"}}, false)
	}
	list := m.List()
	if len(list) != 3 {
		t.Fatalf("%d families, want the bound of 3: %v", len(list), list)
	}
	byName := map[string]FamilyMetadata{}
	for _, f := range list {
		byName[f.Family] = f
	}
	if f := byName["container_cpu_usage_seconds_total"]; f.Type != "counter" || f.Help != "kubelet's help" {
		t.Errorf("an application changed a kubelet family: %+v", f)
	}
	if f := byName["app_total"]; len(f.Help) != MaxHelpBytes {
		t.Errorf("help of %d bytes kept, want it cut to %d", len(f.Help), MaxHelpBytes)
	}
	// Trusted writers are never refused by the bound.
	m.Apply([]MetadataUpdate{{Kind: MetadataType, Family: "kube_pod_info", Value: "gauge"}}, true)
	if len(m.List()) != 4 {
		t.Error("a trusted family was refused by the bound")
	}
}
