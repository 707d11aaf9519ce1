package kubestate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Allowlist says which Kubernetes labels (or annotations) of a resource
// become label_<key> (annotation_<key>) labels, in kube-state-metrics'
// --metric-labels-allowlist syntax: "pods=[app,team],namespaces=[*]". A key
// may be "*" (first in its list: every key) or carry one "*" (a prefix or
// suffix pattern), as in kube-state-metrics.
type Allowlist map[string][]string

// maxWildcardsPerKey is kube-state-metrics' limit on "*" in a partial key.
const maxWildcardsPerKey = 1

// ParseAllowlist reads the flag's value; resources must be known.
func ParseAllowlist(s string) (Allowlist, error) {
	a := Allowlist{}
	s = strings.TrimSpace(s)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '[' {
			return nil, fmt.Errorf("%q: want resource=[key,…]", s)
		}
		resource := strings.TrimSpace(s[:eq])
		end := strings.IndexByte(s[eq:], ']')
		if end < 0 {
			return nil, fmt.Errorf("%q: missing ]", s)
		}
		if !IsResource(resource) {
			return nil, fmt.Errorf("unknown resource %q (known: %s)", resource, strings.Join(Resources(), ","))
		}
		var keys []string
		for _, k := range strings.Split(s[eq+2:eq+end], ",") {
			if k = strings.TrimSpace(k); k == "" {
				continue
			}
			if strings.Count(k, "*") > maxWildcardsPerKey {
				return nil, fmt.Errorf("%s: %q has more than %d wildcard", resource, k, maxWildcardsPerKey)
			}
			keys = append(keys, k)
		}
		a[resource] = append(a[resource], keys...)
		s = strings.TrimSpace(s[eq+end+1:])
		if s != "" {
			if s[0] != ',' {
				return nil, fmt.Errorf("%q: want , between resources", s)
			}
			s = strings.TrimSpace(s[1:])
		}
	}
	return a, nil
}

// keyMatcher decides which keys of one resource's map are kept.
type keyMatcher struct {
	all      bool
	exact    map[string]bool
	patterns []wildcard
}

// wildcard is a key with one "*": kube-state-metrics compiles it to a
// regular expression; a prefix and suffix say the same and cannot fail on
// any input.
type wildcard struct{ prefix, suffix string }

func (w wildcard) match(k string) bool {
	return len(k) >= len(w.prefix)+len(w.suffix) && strings.HasPrefix(k, w.prefix) && strings.HasSuffix(k, w.suffix)
}

func (a Allowlist) matcher(resource string) keyMatcher {
	m := keyMatcher{exact: map[string]bool{}}
	for i, k := range a[resource] {
		switch {
		case k == "*" && i == 0:
			m.all = true
		case k == "*":
			// kube-state-metrics honours the bare wildcard only first.
		case strings.Contains(k, "*"):
			prefix, suffix, _ := strings.Cut(k, "*")
			m.patterns = append(m.patterns, wildcard{prefix, suffix})
		default:
			m.exact[k] = true
		}
	}
	return m
}

func (m keyMatcher) empty() bool { return !m.all && len(m.exact) == 0 && len(m.patterns) == 0 }

func (m keyMatcher) match(k string) bool {
	if m.all || m.exact[k] {
		return true
	}
	for _, p := range m.patterns {
		if p.match(k) {
			return true
		}
	}
	return false
}

// mapLabels turns the allowed keys of a Kubernetes map into prefix_<key>
// pairs exactly as kube-state-metrics does: keys sorted, invalid characters
// replaced by "_", camelCase to snake_case, and names that collide after
// that renamed <name>_conflict1, <name>_conflict2, … in key order.
func (m keyMatcher) mapLabels(prefix string, in map[string]string) []string {
	if m.empty() || len(in) == 0 {
		return nil
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		if m.match(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	names := make([]string, len(keys))
	used := make(map[string]int, len(keys))
	conflicts := map[string]int{}
	for i, k := range keys {
		base := prefix + "_" + snakeCase(invalidLabelChar.ReplaceAllString(k, "_"))
		name := base
		if count, seen := conflicts[base]; seen {
			name = nextFreeName(base, &count, used)
			conflicts[base] = count
		} else if idx, taken := used[name]; taken {
			count := 0
			renamed := nextFreeName(base, &count, used)
			delete(used, name)
			names[idx] = renamed
			used[renamed] = idx
			name = nextFreeName(base, &count, used)
			conflicts[base] = count
		}
		used[name] = i
		names[i] = name
	}
	out := make([]string, 0, 2*len(keys))
	for i, k := range keys {
		out = append(out, names[i], in[k])
	}
	return out
}

var (
	invalidLabelChar = regexp.MustCompile(`[^a-zA-Z0-9_]`)
	lowerThenUpper   = regexp.MustCompile(`([a-z0-9])([A-Z])`)
)

func snakeCase(s string) string {
	return strings.ToLower(lowerThenUpper.ReplaceAllString(s, "${1}_${2}"))
}

func nextFreeName(base string, count *int, used map[string]int) string {
	for {
		*count++
		candidate := fmt.Sprintf("%s_conflict%d", base, *count)
		if _, taken := used[candidate]; !taken {
			return candidate
		}
	}
}
