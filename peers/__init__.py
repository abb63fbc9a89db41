"""Real peers built from the Go module proxy at pinned versions: kube-apiserver, etcd, CoreDNS+k8s_gateway.

Nothing of theirs lives in this repository. `python -m peers.build` builds each into a cache keyed by
version (outside the checkout), and `peers.run` starts them for the tests and the benchmark.
"""
