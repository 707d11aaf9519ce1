#!/usr/bin/env python3
"""Writes deploy/base/rules/kubernetes-mixin.rules.yaml (and the chart's copy)
from kube-prometheus' rendering of the kubernetes-mixin (Apache-2.0):
    python3 hack/mixin-rules.py <kube-prometheus>/manifests/kubernetesControlPlane-prometheusRule.yaml <commit>
Kept: the groups whose series kmetrics writes (kube-state-metrics' families,
the kubelet's /metrics, cAdvisor) and the recording rules they use; left
out: the API server, scheduler and controller-manager groups (kmetrics does
not scrape them), node_exporter's recording rules, and KubeletDown (it fires
whenever --kubelet-metrics is off; kmetrics' KubeletNotScraped covers a
kubelet it cannot scrape)."""
import sys
import yaml

ALERT_GROUPS = ["kubernetes-apps", "kubernetes-resources", "kubernetes-storage", "kubernetes-system-kubelet"]
RECORD_GROUPS = ["k8s.rules.container_memory_requests", "k8s.rules.container_cpu_requests",
                 "k8s.rules.container_memory_limits", "k8s.rules.container_cpu_limits",
                 "k8s.rules.pod_owner", "kubelet.rules"]
LEFT_OUT = {"KubeletDown"}


class Literal(str):
    pass


def literal(dumper, s):
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|")


yaml.add_representer(Literal, literal)


def block(rule):
    out = {}
    for k in ["alert", "record", "expr", "for", "labels", "annotations"]:
        if k in rule:
            v = rule[k]
            out[k] = Literal(v) if k == "expr" and "\n" in v else v
    return out


def main(src, commit):
    spec = yaml.safe_load(open(src))["spec"]
    groups = {g["name"]: g for g in spec["groups"]}
    out = []
    for name in RECORD_GROUPS + ALERT_GROUPS:
        g = groups[name]
        rules = [block(r) for r in g["rules"] if r.get("alert") not in LEFT_OUT]
        out.append({"name": name, "rules": rules})
    node = [block(r) for r in groups["node.rules"]["rules"] if r.get("record") == "node_namespace_pod:kube_pod_info:"]
    out.insert(len(RECORD_GROUPS), {"name": "node.rules", "rules": node})
    header = f"""# The kubernetes-mixin's alerts on workloads, resources, storage and kubelets,
# and the recording rules they read, as kube-prometheus renders them
# (github.com/kubernetes-monitoring/kubernetes-mixin, Apache License 2.0;
# kube-prometheus commit {commit}). The rules are unchanged; which are left
# out and why: hack/mixin-rules.py, which writes this file. They read kube-state-metrics' families
# (--cluster-state), the kubelet's /metrics (--kubelet-metrics: the storage
# and kubelet alerts) and cAdvisor (--kubelet-cadvisor: CPUThrottlingHigh);
# an alert whose series are not written never fires.
"""
    body = yaml.dump({"groups": out}, sort_keys=False, width=1000, allow_unicode=True)
    for path in ["deploy/base/rules/kubernetes-mixin.rules.yaml", "deploy/helm/kmetrics/files/kubernetes-mixin.rules.yaml"]:
        with open(path, "w") as f:
            f.write(header + body)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
