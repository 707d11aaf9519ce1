// Package vpa is a module of its own that only requires the Vertical Pod
// Autoscaler (k8s.io/autoscaler/vertical-pod-autoscaler v1.8.1), so that
// its recommender is built unchanged, with its own dependencies, from the
// module cache (hack/build-vpa.sh), and run against kmetrics by
// test/e2e's TestVPARecommender.
package vpa
