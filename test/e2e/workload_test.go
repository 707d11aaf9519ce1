//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// deployment creates a Deployment of kwok pods whose containers use cpu and
// memory (kwok's usage annotations) and request requestCPU.
func deployment(t *testing.T, ns, name string, replicas int, cpu, memory, requestCPU string) {
	t.Helper()
	kubectlApply(t, fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata:
      labels: {app: %[2]s}
      annotations: {kwok.x-k8s.io/usage-cpu: "%[4]s", kwok.x-k8s.io/usage-memory: "%[5]s"}
    spec:
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10
        resources: {requests: {cpu: "%[6]s", memory: 32Mi}}
`, ns, name, replicas, cpu, memory, requestCPU))
}

// scrapedDeployment is the manifest of a namespace and a Deployment of kwok
// pods labelled app=name (plus extraLabels, "k: v, …") that ask to be
// scraped on port 9100, where an appFleet serves them.
func scrapedDeployment(ns, name string, replicas int, extraLabels string) string {
	if extraLabels != "" {
		extraLabels = ", " + extraLabels
	}
	return fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata:
      labels: {app: %[2]s%[4]s}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9100"}
    spec:
      containers: [{name: main, image: registry.k8s.io/pause:3.10}]
---
`, ns, name, replicas, extraLabels)
}

// topRow is one line of kubectl top output, by column header.
type topRow map[string]string

// parseTop reads kubectl top's table.
func parseTop(out string) []topRow {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return nil
	}
	header := strings.Fields(lines[0])
	var rows []topRow
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < len(header) {
			continue
		}
		r := topRow{}
		for i, h := range header {
			r[h] = f[i]
		}
		rows = append(rows, r)
	}
	return rows
}

// millicores parses "250m" or "1" (cores).
func millicores(s string) (float64, error) {
	if strings.HasSuffix(s, "m") {
		return strconv.ParseFloat(strings.TrimSuffix(s, "m"), 64)
	}
	v, err := strconv.ParseFloat(s, 64)
	return v * 1000, err
}

// mebibytes parses "64Mi".
func mebibytes(s string) (float64, error) {
	if strings.HasSuffix(s, "Mi") {
		return strconv.ParseFloat(strings.TrimSuffix(s, "Mi"), 64)
	}
	if strings.HasSuffix(s, "Gi") {
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "Gi"), 64)
		return v * 1024, err
	}
	return 0, fmt.Errorf("unexpected memory %q", s)
}

// within reports whether got is within 10% of want (kwok integrates usage
// between scrapes, so rates wobble a little).
func within(got, want float64) bool {
	return got >= want*0.9 && got <= want*1.1
}
