package promoperator

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// ruleFile is a PrometheusRule as a Prometheus rule file, checked as
// Prometheus checks one; a confined one's rules all write its namespace. Thanos' partial_response_strategy has no meaning
// here and is dropped, as the operator drops it for Prometheus.
func ruleFile(r *monitoringv1.PrometheusRule, confined bool, logger *slog.Logger) ([]byte, error) {
	spec := r.Spec.DeepCopy()
	for i := range spec.Groups {
		spec.Groups[i].PartialResponseStrategy = ""
		// What a namespace's rules write belongs to that namespace (the
		// operator's enforcedNamespaceLabel); they read only it too
		// (RuleFileNamespace confines the evaluation).
		for j := range spec.Groups[i].Rules {
			if !confined {
				break
			}
			rule := &spec.Groups[i].Rules[j]
			if rule.Labels == nil {
				rule.Labels = map[string]string{}
			}
			rule.Labels["namespace"] = r.Namespace
		}
	}
	b, err := yaml.Marshal(spec)
	if err != nil {
		return nil, err
	}
	_, errs := rulefmt.Parse(b, false, model.UTF8Validation, parser.NewParser(parser.Options{}), logger)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

// ruleFiles keeps one file per PrometheusRule in dir, where the rule
// evaluator reads them beside --rules.file.
type ruleFiles struct{ dir string }

// fileName is <namespace>_<name>.yaml: "_" is in no object name.
func (f ruleFiles) fileName(ns, name string) string {
	return filepath.Join(f.dir, ns+"_"+name+".yaml")
}

// write replaces a rule's file if its content changed.
func (f ruleFiles) write(ns, name string, content []byte) error {
	path := f.fileName(ns, name)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// prune removes the files of rules not in keep (deleted, or no longer
// selected).
func (f ruleFiles) prune(keep map[string]bool) error {
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		path := filepath.Join(f.dir, e.Name())
		if !keep[path] && strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".tmp") {
			errs = append(errs, os.Remove(path))
		}
	}
	return errors.Join(errs...)
}

// RuleFileNamespace is the namespace of the PrometheusRule whose rule file
// under dir is file; false for any other file (--rules.file's).
func RuleFileNamespace(dir, file string) (string, bool) {
	if dir == "" || filepath.Dir(file) != filepath.Clean(dir) {
		return "", false
	}
	ns, _, ok := strings.Cut(filepath.Base(file), "_")
	if !ok || ns == "" {
		return "", false
	}
	return ns, true
}

// glob is the pattern the rule evaluator loads the files from.
func (f ruleFiles) glob() string { return filepath.Join(f.dir, "*.yaml") }
