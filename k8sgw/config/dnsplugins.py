"""DNS behaviour directives beyond k8s_gateway: forward, cache, loadbalance, loop (issue 3)."""
