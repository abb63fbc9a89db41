"""Only the optional C part lives here; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # recvmmsg/sendmmsg for the UDP server (Linux). Optional: where it cannot be built (no C
        # compiler, not Linux), k8sgw installs anyway and serves UDP with recvfrom/sendto.
        Extension("k8sgw.dnsserver._mmsg", ["k8sgw/dnsserver/_mmsg.c"], optional=True),
    ]
)
