package scraper

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/metrics-server/pkg/utils"
)

// AnnotationResourceMetricsPath overrides the path of a node's resource
// metrics endpoint, as in metrics-server.
const AnnotationResourceMetricsPath = "metrics.k8s.io/resource-metrics-path"

// DefaultResourceMetricsPath is the kubelet's resource metrics endpoint.
const DefaultResourceMetricsPath = "/metrics/resource"

// acceptHeader asks for the text format (what the kubelet serves) first.
const acceptHeader = "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"

// KubeletConfig says how to reach and authenticate to kubelets.
type KubeletConfig struct {
	// Rest carries the TLS settings (CA, client certificate) and the bearer
	// token; its Host is ignored.
	Rest              *rest.Config
	Scheme            string
	DefaultPort       int
	UseNodeStatusPort bool
	AddressTypes      []corev1.NodeAddressType
	// Timeout bounds one request, connection to last byte.
	Timeout time.Duration
	// MaxBodyBytes caps one response (after decompression).
	MaxBodyBytes int64
}

// kubeletClient fetches a node's resource metrics.
type kubeletClient struct {
	http              *http.Client
	scheme            string
	defaultPort       int
	useNodeStatusPort bool
	resolver          utils.NodeAddressResolver
	maxBodyBytes      int64
}

func newKubeletClient(cfg KubeletConfig) (*kubeletClient, error) {
	rt, err := rest.TransportFor(cfg.Rest)
	if err != nil {
		return nil, fmt.Errorf("building kubelet transport: %w", err)
	}
	return &kubeletClient{
		// No redirect is followed: the transport would send kmetrics'
		// token along to wherever a (compromised) kubelet points.
		http: &http.Client{Transport: rt, Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		scheme:            cfg.Scheme,
		defaultPort:       cfg.DefaultPort,
		useNodeStatusPort: cfg.UseNodeStatusPort,
		resolver:          utils.NewPriorityNodeAddressResolver(cfg.AddressTypes),
		maxBodyBytes:      cfg.MaxBodyBytes,
	}, nil
}

// endpoint returns the URL of a node's resource metrics, its host:port (the
// instance label) and path.
func (c *kubeletClient) endpoint(node *corev1.Node) (u, instance, path string, err error) {
	path = DefaultResourceMetricsPath
	if p := node.Annotations[AnnotationResourceMetricsPath]; p != "" {
		path = p
	}
	return c.endpointAt(node, path)
}

// endpointAt is the URL of path on a node's kubelet; "{node}" in path is
// the node's name (e.g. the API server's proxy path
// /api/v1/nodes/{node}/proxy/metrics/cadvisor).
func (c *kubeletClient) endpointAt(node *corev1.Node, path string) (u, instance, p string, err error) {
	addr, err := c.resolver.NodeAddress(node)
	if err != nil {
		return "", "", "", err
	}
	port := c.defaultPort
	if p := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port); c.useNodeStatusPort && p != 0 {
		port = p
	}
	path = strings.ReplaceAll(path, "{node}", node.Name)
	instance = net.JoinHostPort(addr, strconv.Itoa(port))
	return (&url.URL{Scheme: c.scheme, Host: instance, Path: path}).String(), instance, path, nil
}

// errTooLarge marks a response over the size cap.
type errTooLarge struct {
	limit int64
	flag  string
}

func (e errTooLarge) Error() string {
	return fmt.Sprintf("response larger than the %d byte limit (%s)", e.limit, e.flag)
}

// fetch GETs url into buf (reused between scrapes) and returns the body and
// its content type.
func (c *kubeletClient) fetch(ctx context.Context, u string, buf []byte) ([]byte, string, error) {
	return fetchMetrics(ctx, c.http, u, buf, c.maxBodyBytes, "--kubelet-max-response-bytes")
}

// fetchMetrics GETs a metrics endpoint into buf, reading at most limit bytes
// (limitFlag names the flag that sets it, for the error).
func fetchMetrics(ctx context.Context, client *http.Client, u string, buf []byte, limit int64, limitFlag string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return buf, "", err
	}
	req.Header.Set("Accept", acceptHeader)
	resp, err := client.Do(req)
	if err != nil {
		return buf, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return buf, "", fmt.Errorf("target answered %s", resp.Status)
	}
	buf, err = readLimited(resp.Body, buf[:0], limit, limitFlag)
	return buf, resp.Header.Get("Content-Type"), err
}

// readLimited reads r into buf, failing once more than limit bytes arrive.
func readLimited(r io.Reader, buf []byte, limit int64, limitFlag string) ([]byte, error) {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errTooLarge{limit, limitFlag}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("reading response: %w", err)
		}
	}
}
