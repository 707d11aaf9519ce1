package naming

import (
	"bytes"
	"fmt"
	"regexp"
	"sync"
	"text/template"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// resourceConverter maps series labels to Kubernetes resources and back,
// through explicit overrides or a label template, as prometheus-adapter does.
type resourceConverter struct {
	mapper    meta.RESTMapper
	overrides map[string]schema.GroupResource // label → resource as written
	template  *template.Template
	labelRe   *regexp.Regexp // the template with group/resource captures

	mu    sync.Mutex
	known map[string]resolved // label → resource, including "not one"
}

type resolved struct {
	gr schema.GroupResource
	ok bool
}

func newResourceConverter(r Resources, mapper meta.RESTMapper) (*resourceConverter, error) {
	c := &resourceConverter{mapper: mapper, overrides: map[string]schema.GroupResource{}, known: map[string]resolved{}}
	for label, gr := range r.Overrides {
		if gr.Resource == "" {
			return nil, fmt.Errorf("resources.overrides[%s]: resource is required", label)
		}
		c.overrides[label] = schema.GroupResource{Group: gr.Group, Resource: gr.Resource}
	}
	if r.Template == "" {
		return c, nil
	}
	t, err := template.New("resources").Delims("<<", ">>").Parse(r.Template)
	if err != nil {
		return nil, fmt.Errorf("resources.template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, schema.GroupResource{Group: "(?P<group>.+?)", Resource: "(?P<resource>.+?)"}); err != nil {
		return nil, fmt.Errorf("resources.template: %w", err)
	}
	re, err := regexp.Compile("^" + b.String() + "$")
	if err != nil {
		return nil, fmt.Errorf("resources.template %q: %w", r.Template, err)
	}
	c.template, c.labelRe = t, re
	return c, nil
}

func (c *resourceConverter) resourceFor(label string) (schema.GroupResource, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.known[label]; ok {
		return r.gr, r.ok
	}
	var r resolved
	if gr, ok := c.overrides[label]; ok {
		r.gr, r.ok = c.normalize(gr)
	} else if c.labelRe != nil {
		if m := c.labelRe.FindStringSubmatch(label); m != nil {
			var gr schema.GroupResource
			for i, name := range c.labelRe.SubexpNames() {
				switch name {
				case "group":
					gr.Group = m[i]
				case "resource":
					gr.Resource = m[i]
				}
			}
			r.gr, r.ok = c.normalize(gr)
		}
	}
	c.known[label] = r
	return r.gr, r.ok
}

// normalize turns "pod" or "deployment.apps" into the served resource
// (pods, deployments.apps); false if the cluster has no such resource.
func (c *resourceConverter) normalize(gr schema.GroupResource) (schema.GroupResource, bool) {
	gvr, err := c.mapper.ResourceFor(gr.WithVersion(""))
	if err != nil {
		return gr, false
	}
	return gvr.GroupResource(), true
}

func (c *resourceConverter) labelFor(gr schema.GroupResource) (string, error) {
	for label, o := range c.overrides {
		if n, ok := c.normalize(o); ok && n == gr {
			return label, nil
		}
	}
	if c.template == nil {
		return "", fmt.Errorf("no series label names %s", gr)
	}
	singular, err := c.mapper.ResourceSingularizer(gr.Resource)
	if err != nil {
		return "", fmt.Errorf("resource %s: %w", gr, err)
	}
	var b bytes.Buffer
	if err := c.template.Execute(&b, schema.GroupResource{Group: gr.Group, Resource: singular}); err != nil {
		return "", err
	}
	return b.String(), nil
}
