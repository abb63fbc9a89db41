"""An in-memory, Kubernetes-compatible API server for development and tests (the "embedded default").

kubectl (1.32) can get, watch, create, apply (client- and server-side) and delete against it. No
controllers run: `status` is stored exactly as written.
"""

from .errors import ApiError
from .faults import FaultPoints
from .kinds import KINDS, Kind
from .kubeconfig import write_kubeconfig
from .server import serve_devapi
from .store import DevCluster

__all__ = ["KINDS", "ApiError", "DevCluster", "FaultPoints", "Kind", "serve_devapi", "write_kubeconfig"]
