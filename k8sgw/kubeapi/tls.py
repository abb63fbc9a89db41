"""Build the ssl.SSLContext for one API server from kubeconfig-style TLS material.

Kept apart from kubeconfig.py so that in-cluster discovery uses the same code. It knows nothing
about kubeconfig files: callers turn its OSError / ssl.SSLError / ValueError into a
KubeconfigError that names the file and the field. Error messages here never contain key
material: PEM bytes go to the ssl module only, never into a string.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator

__all__ = ["decode_base64", "load_client_cert", "ssl_context"]


def decode_base64(text: str) -> bytes:
    """Decode a kubeconfig `*-data` field (Go's []byte: standard base64, line breaks allowed).

    Raises:
        ValueError: not valid base64 (the message does not repeat the input).
    """
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


@contextlib.contextmanager
def _pem_file(data: bytes) -> Iterator[str]:
    """A 0600 temporary file holding `data`, deleted on exit (load_cert_chain reads only files)."""
    fd, path = tempfile.mkstemp(prefix="k8sgw-", suffix=".pem")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def ssl_context(
    *, ca_data: bytes | None = None, ca_file: str | None = None, insecure: bool = False
) -> ssl.SSLContext:
    """An SSLContext that trusts the given CA, else the system roots.

    `ca_data` (PEM bytes) wins over `ca_file`, as in kubeconfig. With a CA, only that CA is
    trusted (as client-go). `insecure` turns off server verification; the context can still
    present a client certificate, which `verify=False` in httpx would drop.

    Raises:
        OSError: the CA file cannot be read.
        ssl.SSLError, ValueError: the CA is not PEM.
    """
    if insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_data is None and ca_file is not None:
        with open(ca_file, "rb") as f:  # a clear OSError (with the path) before ssl's terse one
            ca_data = f.read()
    if ca_data is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cadata=ca_data.decode("ascii"))  # str: bytes would mean DER


def load_client_cert(
    ctx: ssl.SSLContext,
    *,
    cert_data: bytes | None = None,
    cert_file: str | None = None,
    key_data: bytes | None = None,
    key_file: str | None = None,
) -> None:
    """Make `ctx` present a client certificate; `*_data` wins over `*_file`.

    `load_cert_chain` reads only files, so `*_data` is written to 0600 temporary files that are
    deleted as soon as it returns.

    Raises:
        OSError: a file cannot be read.
        ssl.SSLError: not a PEM certificate/key, or the key does not match the certificate.
    """
    with contextlib.ExitStack() as stack:
        if cert_data is not None:
            cert_file = stack.enter_context(_pem_file(cert_data))
        if key_data is not None:
            key_file = stack.enter_context(_pem_file(key_data))
        if cert_file is None:
            raise ValueError("no client certificate given")
        ctx.load_cert_chain(cert_file, key_file)
