"""The pinned versions of everything built from the Go module proxy, in one place."""

from __future__ import annotations

# kube-apiserver: the newest release whose go.mod asks for no newer Go than the machines have (1.26).
KUBERNETES = "v1.36.3"
# etcd: the release line that Kubernetes' own etcd client (go.etcd.io/etcd/client/v3) follows.
ETCD = "v3.6.16"
# CoreDNS with the k8s_gateway plugin: the maintained fork's module and its cmd/coredns.go main.
K8S_GATEWAY_MODULE = "github.com/k8s-gateway/k8s_gateway"
# The proxy lists no version of it (403); v1.5.1 is the newest release its own Helm chart names.
K8S_GATEWAY = "v1.5.1"
# CRDs the real-API tests install, read from these modules in the Go module cache.
GATEWAY_API = "v1.6.3"
# v0.20.0: the newest whose go.mod asks for no newer Go than 1.26 (v0.23.0 wants 1.27).
EXTERNAL_DNS = "v0.20.0"
