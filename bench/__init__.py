"""The benchmark: k8sgw next to NSD under dnsperf, and k8sgw at 50k objects.

`python -m bench` runs it (see run.py). The package only measures: it starts k8sgw as its own
process against the in-repo dev API server and never imports k8sgw's serving code.
"""
