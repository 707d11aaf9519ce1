//go:build bench

// Package bench measures an HPA Pods request and custom metrics discovery
// in kmetrics against prometheus-adapter's query path over a real Debian
// Prometheus, with the same data and the same real control plane, side by
// side in one run. prometheus-adapter itself is not on the Go module proxy
// (403), so its path is reproduced with its own parts: the dynamic-client
// LIST of custom-metrics-apiserver's helpers.ListObjectNames, the
// pod=~"a|b|…" query it builds, Prometheus' HTTP API and client, and its
// relist (/api/v1/series) for discovery.
//
//	make bench-adapter
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kmetrics/kmetrics/pkg/storage"
	"github.com/kmetrics/kmetrics/test/internal/promserver"
)

const (
	apiserverPort  = "26443"
	etcdPort       = "22379"
	prometheusPort = "29090"
	nodes          = 4 // kwok gives each node a /24 of pod IPs: 1,000 pods need 4
	pods           = 1000
	metricsPerPod  = 10 // 10,000 series for discovery
	namespace      = "bench"
	// dataSpan is how long the run may take: samples reach that far ahead.
	dataSpan = 30 * time.Minute
)

var (
	root, state string
	restConfig  *rest.Config
	db          *storage.DB
	prom        *promserver.Server
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	wd, _ := os.Getwd()
	root = filepath.Clean(filepath.Join(wd, "..", ".."))
	state = filepath.Join(root, ".state", "bench")
	for k, v := range map[string]string{
		"KMETRICS_STATE": state, "KMETRICS_APISERVER_PORT": apiserverPort, "KMETRICS_ETCD_PORT": etcdPort,
		"KMETRICS_NODE_NET": "127.0.3", "KMETRICS_POD_NET": "127.120", "KMETRICS_NODES": fmt.Sprint(nodes), "KMETRICS_PORT": "28443",
	} {
		os.Setenv(k, v)
	}
	_ = script("down")
	if err := script("up"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = script("down") }()
	var err error
	if restConfig, err = clientcmd.BuildConfigFromFlags("", filepath.Join(state, "admin.kubeconfig")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	restConfig.QPS, restConfig.Burst = 500, 1000
	if err := createPods(); err != nil {
		fmt.Fprintln(os.Stderr, "creating pods:", err)
		return 1
	}
	if prom, err = promserver.Start(filepath.Join(state, "prometheus"), prometheusPort); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer prom.Stop()
	if db, err = storage.Open(storage.Options{Path: filepath.Join(state, "tsdb")}, nil, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	if err := writeData(); err != nil {
		fmt.Fprintln(os.Stderr, "writing data:", err)
		return 1
	}
	return m.Run()
}

func script(arg string) error {
	cmd := exec.Command("bash", filepath.Join(root, "hack", "cluster.sh"), arg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("hack/cluster.sh %s: %v\n%s", arg, err, out)
	}
	return nil
}

func podName(i int) string { return fmt.Sprintf("web-%04d", i) }

// createPods binds 1,000 pods to the kwok nodes (labels app=web on all,
// in100=true on the first 100) and waits until kwok runs them all.
func createPods() error {
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	ctx := context.Background()
	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, pods)
	sem := make(chan struct{}, 32)
	for i := 0; i < pods; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			lbls := map[string]string{"app": "web"}
			if i < 100 {
				lbls["in100"] = "true"
			}
			_, err := client.CoreV1().Pods(namespace).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: podName(i), Labels: lbls},
				Spec: corev1.PodSpec{NodeName: fmt.Sprintf("kwok-node-%d", i%nodes+1),
					Containers: []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}}},
			}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"})
		if err == nil && len(list.Items) == pods {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pods not all running after 5m (err %v)", err)
		}
		time.Sleep(time.Second)
	}
}

// writeData stores the same samples in both: per pod, http_requests_total
// rising 10·(i%5+1)/s and nine more counters, a point every 10 s from a
// minute ago to dataSpan ahead, so that every request of the run sees a
// full 1m rate window (the samples ahead are reached as time passes).
func writeData() error {
	start := time.Now().Truncate(time.Second).Add(-time.Minute)
	app := db.Appender(context.Background())
	var batch []promserver.Series
	for i := 0; i < pods; i++ {
		for k := 0; k < metricsPerPod; k++ {
			name := "http_requests_total"
			if k > 0 {
				name = fmt.Sprintf("app_events_%d_total", k)
			}
			lset := labels.FromStrings("__name__", name, "job", "kubernetes-pods", "namespace", namespace, "pod", podName(i),
				"instance", fmt.Sprintf("127.120.%d.%d:9100", i%nodes+1, i/nodes+2), "node", fmt.Sprintf("kwok-node-%d", i%nodes+1))
			ts := promserver.Series{Labels: lset}
			for step := 0; step <= int(dataSpan/(10*time.Second))+6; step++ {
				t := start.Add(time.Duration(step) * 10 * time.Second).UnixMilli()
				v := float64(10 * 10 * step * (i%5 + 1))
				if _, err := app.Append(0, lset, t, v); err != nil {
					return err
				}
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: v})
			}
			batch = append(batch, ts)
		}
		if len(batch) >= 500 || i == pods-1 {
			if err := prom.Write(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return app.Commit()
}
