"""k8sgw: external DNS for a Kubernetes cluster, the Python successor of CoreDNS's k8s_gateway."""

__version__ = "0.1.0"
