//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDashboardsAcrossClusters: two kmetrics with different cluster
// external labels remote-write into one VictoriaMetrics; every shipped
// dashboard query, with its cluster variable set to either, returns that
// cluster's data from the engine, and neither cluster's counts are doubled.
func TestDashboardsAcrossClusters(t *testing.T) {
	t.Parallel()
	vmBin := peerBinary(t, "VICTORIAMETRICS_BIN", "hack/build-victoriametrics.sh")
	vm := startVictoriaMetrics(t, vmBin)
	const ns = "e2e-clusters"
	deployment(t, ns, "shop", 2, "300m", "96Mi", "100m")
	t.Cleanup(func() { _, _ = kubectl("delete", "namespace", ns, "--wait=false") })
	dir := t.TempDir()
	clusters := []string{"east", "west"}
	for _, c := range clusters {
		file := filepath.Join(dir, c+".yml")
		if err := os.WriteFile(file, []byte(fmt.Sprintf("global: {external_labels: {cluster: %s}}\nremote_write:\n"+
			"- url: http://127.0.0.1:%s/api/v1/write\n  queue_config: {batch_send_deadline: 1s}\n", c, vm.port)), 0o600); err != nil {
			t.Fatal(err)
		}
		startSecondKmetrics(t, "cluster-"+c, "--remote-write.config", file,
			"--rules.file", filepath.Join(root, "deploy", "base", "rules", "*.yaml"))
	}
	vmQuery := func(expr string) (string, error) {
		body, err := httpGet(http.DefaultClient, "http://127.0.0.1:"+vm.port+"/api/v1/query?query="+url.QueryEscape(expr))
		return string(body), err
	}
	var pod string
	eventually(t, 3*time.Minute, "both clusters' recording rules cover the new pods", func() error {
		for _, c := range clusters {
			body, err := vmQuery(`count by (pod) (node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m{cluster="` + c + `",namespace="` + ns + `"})`)
			if err != nil {
				return err
			}
			if n := strings.Count(body, `"pod":"`); n != 2 {
				return fmt.Errorf("cluster %s: %d pods recorded", c, n)
			}
			i := strings.Index(body, `"pod":"`) + len(`"pod":"`)
			pod = body[i : i+strings.Index(body[i:], `"`)]
		}
		return nil
	})
	queries := shippedDashboardQueries(t)
	for _, c := range clusters {
		vars := strings.NewReplacer("$cluster", c, "$namespace", ns, "$pod", pod, "$node", "kwok-node-1", "$__rate_interval", "1m", "$__interval", "15s")
		for _, q := range queries {
			expr := vars.Replace(q.expr)
			t.Run(c+"/"+q.dashboard+"/"+expr, func(t *testing.T) {
				eventually(t, time.Minute, "data for "+expr, func() error {
					body, err := vmQuery(expr)
					if err != nil {
						return err
					}
					if strings.Contains(body, `"result":[]`) {
						return fmt.Errorf("no data")
					}
					return nil
				})
			})
		}
	}
	t.Run("each cluster counted once", func(t *testing.T) {
		// Both counts from one query, until they agree: nodes join and
		// leave the cluster while other tests run (the real node, the
		// hostile tenants' node), and the two kmetrics see that a scrape
		// apart. A series without a cluster label would be a third group.
		eventually(t, time.Minute, "each cluster's node count, and nothing else", func() error {
			body, err := vmQuery(`count by (cluster) (kube_node_info{job="kube-state-metrics"})`)
			if err != nil {
				return err
			}
			var resp struct {
				Data struct {
					Result []struct {
						Metric map[string]string
						Value  [2]any
					}
				}
			}
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				return err
			}
			counts := map[string]any{}
			for _, r := range resp.Data.Result {
				counts[r.Metric["cluster"]] = r.Value[1]
			}
			if len(counts) != len(clusters) || counts[clusters[0]] == nil || counts[clusters[0]] != counts[clusters[1]] {
				return fmt.Errorf("nodes by cluster: %v, want %v with one count", counts, clusters)
			}
			return nil
		})
	})
}
