"""Opening listening sockets: the one place that knows about address families and dual-stack."""

from __future__ import annotations

import ipaddress
import socket

import trio

__all__ = ["ALL_ADDRESSES", "bind_socket"]

# `bind` not given: listen on every address, IPv4 and IPv6, like CoreDNS.
ALL_ADDRESSES = "::"


async def bind_socket(host: str, port: int, kind: int) -> trio.socket.SocketType:
    """A bound trio socket of `kind` (SOCK_DGRAM or SOCK_STREAM) on host:port.

    "::" is dual-stack (IPV6_V6ONLY off), so one socket takes IPv4 too; on a machine without
    IPv6 it falls back to 0.0.0.0.
    """
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    try:
        sock = trio.socket.socket(family, kind)
    except OSError:
        if host != ALL_ADDRESSES:
            raise
        return await bind_socket("0.0.0.0", port, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, host != ALL_ADDRESSES)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
