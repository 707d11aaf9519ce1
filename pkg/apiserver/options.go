package apiserver

import (
	"fmt"
	"maps"
	"net"
	"strings"

	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	utilcompatibility "k8s.io/apiserver/pkg/util/compatibility"
	cliflag "k8s.io/component-base/cli/flag"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	cmopenapicore "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/core"
	cmopenapicustom "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/custommetrics"
	cmopenapiexternal "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/externalmetrics"

	"github.com/kmetrics/kmetrics/pkg/apiserver/metricsapi"
	metricsopenapi "github.com/kmetrics/kmetrics/pkg/apiserver/metricsapi/openapi"
)

// Options are the secure-serving and delegated-auth flags of the server, as
// every aggregated API server (and metrics-server) names them.
type Options struct {
	SecureServing  *genericoptions.SecureServingOptionsWithLoopback
	Authentication *genericoptions.DelegatingAuthenticationOptions
	Authorization  *genericoptions.DelegatingAuthorizationOptions
	Audit          *genericoptions.AuditOptions

	// DisableAuthForTesting serves without authentication and authorization;
	// only tests set it, there is no flag.
	DisableAuthForTesting bool
}

// NewOptions returns the defaults: port 10250 like metrics-server, health
// endpoints reachable without credentials (for kubelet probes), everything
// else authenticated and authorized by the cluster.
func NewOptions() *Options {
	o := &Options{
		SecureServing:  genericoptions.NewSecureServingOptions().WithLoopback(),
		Authentication: genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:  genericoptions.NewDelegatingAuthorizationOptions(),
		Audit:          genericoptions.NewAuditOptions(),
	}
	o.SecureServing.BindPort = 10250
	o.SecureServing.ServerCert.PairName = "kmetrics"
	return o
}

// AddFlags adds the server flags in named sections for --help.
func (o *Options) AddFlags(fss *cliflag.NamedFlagSets) {
	o.SecureServing.AddFlags(fss.FlagSet("secure serving"))
	o.Authentication.AddFlags(fss.FlagSet("authentication"))
	o.Authorization.AddFlags(fss.FlagSet("authorization"))
	o.Audit.AddFlags(fss.FlagSet("audit log"))
}

// DefaultKubeconfig makes a kmetrics run outside the cluster with
// --kubeconfig delegate auth through the same kubeconfig unless told
// otherwise.
func (o *Options) DefaultKubeconfig(path string) {
	if path == "" {
		return
	}
	if o.Authentication.RemoteKubeConfigFile == "" {
		o.Authentication.RemoteKubeConfigFile = path
	}
	if o.Authorization.RemoteKubeConfigFile == "" {
		o.Authorization.RemoteKubeConfigFile = path
	}
}

// Validate reports invalid flag combinations.
func (o *Options) Validate() []error {
	var errs []error
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	errs = append(errs, o.Audit.Validate()...)
	return errs
}

// Config builds the generic server configuration. The serving certificate
// comes from cert (kmetrics' own, pkg/servingcert) when it is not nil, else
// from --tls-cert-file; without either a self-signed one is generated (only
// fit for tests: the APIService's caBundle must name a real CA).
func (o *Options) Config(cert dynamiccertificates.CertKeyContentProvider) (*genericapiserver.Config, error) {
	if cert == nil {
		if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
			return nil, fmt.Errorf("creating self-signed certificates: %w", err)
		}
	}
	cfg := genericapiserver.NewConfig(metricsapi.Codecs)
	if err := o.SecureServing.ApplyTo(&cfg.SecureServing, &cfg.LoopbackClientConfig); err != nil {
		return nil, err
	}
	if cert != nil {
		cfg.SecureServing.Cert = cert
	}
	if !o.DisableAuthForTesting {
		if err := o.Authentication.ApplyTo(&cfg.Authentication, cfg.SecureServing, nil); err != nil {
			return nil, err
		}
		if err := o.Authorization.ApplyTo(&cfg.Authorization); err != nil {
			return nil, err
		}
	}
	if err := o.Audit.ApplyTo(cfg); err != nil {
		return nil, err
	}
	cfg.EffectiveVersion = utilcompatibility.DefaultBuildEffectiveVersion()
	// One server, three API groups: its OpenAPI needs all their models.
	namer := openapinamer.NewDefinitionNamer(metricsapi.Scheme, cmapiserver.Scheme)
	definitions := servedDefinitions()
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(definitions, namer)
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(definitions, namer)
	version := strings.Split(cfg.EffectiveVersion.BinaryVersion().String(), "-")[0]
	cfg.OpenAPIConfig.Info.Title, cfg.OpenAPIConfig.Info.Version = "kmetrics", version
	cfg.OpenAPIV3Config.Info.Title, cfg.OpenAPIV3Config.Info.Version = "kmetrics", version
	return cfg, nil
}

// servedDefinitions is the OpenAPI models of the three API groups.
func servedDefinitions() openapicommon.GetOpenAPIDefinitions {
	return mergeDefinitions(metricsopenapi.GetOpenAPIDefinitions, cmopenapicore.GetOpenAPIDefinitions,
		cmopenapicustom.GetOpenAPIDefinitions, cmopenapiexternal.GetOpenAPIDefinitions)
}

// mergeDefinitions is the models of the three groups, and of what they
// refer to. custom-metrics-apiserver's generated "core" definitions are
// every model of k8s.io/api/core/v1 and more (hundreds); the served kinds
// refer to one (ObjectReference). The API server keeps this map for the
// process' life (OpenAPI v3 builds from it on demand), so only the models
// reachable from the served groups and apimachinery's are kept: ~3 MiB of
// heap less (make bench-footprint's profile).
func mergeDefinitions(getters ...openapicommon.GetOpenAPIDefinitions) openapicommon.GetOpenAPIDefinitions {
	return func(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
		all := map[string]openapicommon.OpenAPIDefinition{}
		for _, get := range getters {
			maps.Copy(all, get(ref))
		}
		kept := map[string]openapicommon.OpenAPIDefinition{}
		var keep func(name string)
		keep = func(name string) {
			d, ok := all[name]
			if _, done := kept[name]; done || !ok {
				return
			}
			kept[name] = d
			for _, dep := range d.Dependencies {
				keep(dep)
			}
		}
		for name := range all {
			// Kubernetes' own API types (k8s.io/api/..., named
			// io.k8s.api.… by the generated definitions) only where a
			// served model refers to them.
			if !strings.HasPrefix(name, "k8s.io/api/") && !strings.HasPrefix(name, "io.k8s.api.") {
				keep(name)
			}
		}
		return kept
	}
}
