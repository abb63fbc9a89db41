"""Opening listening sockets: the one place that knows about address families and dual-stack."""

from __future__ import annotations

import errno
import ipaddress
import socket

import trio

__all__ = ["ALL_ADDRESSES", "TCP_BACKLOG", "bind_dns_sockets", "bind_socket"]

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
TCP_BACKLOG = 128

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
        else:
            # Bursts at 100k+ queries/s overflow the default ~200 KB receive buffer and the kernel
            # drops queries; the kernel caps this at net.core.rmem_max (best effort).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        await sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


# Port 0 (tests, k8sgw-dev --dns-port 0) asks the kernel for a free TCP port; the same number may be
# taken for UDP (or by an outgoing connection), so try again with another. 20 tries is plenty.
_FREE_PORT_TRIES = 20


async def bind_dns_sockets(host: str, port: int) -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    """A UDP and a TCP socket bound to the same host and port (port 0: the same free port for both)."""
    for _ in range(_FREE_PORT_TRIES if port == 0 else 1):
        tcp = await bind_socket(host, port, socket.SOCK_STREAM)
        try:
            udp = await bind_socket(host, tcp.getsockname()[1], socket.SOCK_DGRAM)
        except OSError as exc:
            tcp.close()
            if port != 0 or exc.errno != errno.EADDRINUSE:
                raise
            continue
        # Listening from the bind on: a server swapped in later (a reload commits without
        # awaiting) finds the connections that came meanwhile in the backlog, none refused.
        tcp.listen(TCP_BACKLOG)
        return udp, tcp
    raise OSError(errno.EADDRINUSE, f"no port free for both UDP and TCP on {host}")
