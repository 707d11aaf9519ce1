// Package apiserver builds kmetrics' secure generic API server: delegated
// authentication and authorization, health checks, and the metrics APIs.
package apiserver
