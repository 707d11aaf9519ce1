package apiserver

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"

	"github.com/kmetrics/kmetrics/pkg/apiserver/metricsapi"
)

// validateSelectors answers a request whose labelSelector, fieldSelector or
// metricLabelSelector (custom metrics)
// does not parse with a 400 that names the parameter and repeats the value:
// the generic error ("unable to parse requirement: found ”…") leaves users
// guessing which of their inputs was wrong. It runs after authentication and
// authorization, inside the generic handler chain.
func validateSelectors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var err error
		for _, param := range []string{"labelSelector", "metricLabelSelector"} {
			if v := q.Get(param); err == nil && v != "" {
				if _, perr := labels.Parse(v); perr != nil {
					err = fmt.Errorf("invalid %s %q: %v", param, v, perr)
				}
			}
		}
		if v := q.Get("fieldSelector"); err == nil && v != "" {
			if _, perr := fields.ParseSelector(v); perr != nil {
				err = fmt.Errorf("invalid fieldSelector %q: %v", v, perr)
			}
		}
		if err != nil {
			responsewriters.ErrorNegotiated(apierrors.NewBadRequest(err.Error()), metricsapi.Codecs, schema.GroupVersion{}, w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
