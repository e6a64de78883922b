"""Turn ``cluster=`` into a connected ``distributed.Client``, securely.

- ``"local"``: a LocalCluster made here, workers as processes, every socket on 127.0.0.1, no
  dashboard (the scheduler's HTTP server gets no routes). Closed with the pool.
- a scheduler address: a Client made here (closed with the pool). A ``tcp://`` (or ``ws://``)
  address that is not loopback carries pickles unauthenticated and in clear over the network, so
  it is refused unless the caller says ``insecure=True``; TLS (``tls://`` with ``security=``) is
  the way to reach another host.
- a LocalCluster (anything with ``scheduler_address``): a Client of ours on it; the cluster is the
  caller's.
- a Client: used as is, never closed by the pool.

``security=`` (a ``distributed.security.Security``) is passed to the Clients and clusters made here.
"""
import ipaddress
import os
import socket

import dask
from distributed import Client, LocalCluster
from distributed.comm import parse_address
from distributed.comm.addressing import parse_host_port

__all__ = ["Connection", "check_address", "connect"]

# Schemes that carry messages in clear, without authentication.
_CLEAR_SCHEMES = ("tcp", "ws")

# How long a Client made here waits for its scheduler before giving up (seconds).
_CONNECT_TIMEOUT = 10


class Connection:
    """A Client and what the pool must close with it."""

    def __init__(self, client, owned_client=False, owned_cluster=None):
        self.client = client
        self.owned_client = owned_client
        self.owned_cluster = owned_cluster
        self.address = client.scheduler.address if client.scheduler is not None else None

    def close(self):
        if self.owned_client:
            self.client.close(timeout=_CONNECT_TIMEOUT)
        if self.owned_cluster is not None:
            self.owned_cluster.close(timeout=_CONNECT_TIMEOUT)


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_address(address, insecure=False):
    """Refuse a clear-text address that leaves the machine, unless insecure=True."""
    scheme, location = parse_address(address)
    if scheme not in _CLEAR_SCHEMES or insecure:
        return
    host, _ = parse_host_port(location)
    if not _is_loopback(host):
        raise ValueError(
            f"refusing to send tasks to {address} in clear text: a {scheme}:// scheduler that is not "
            "on this machine's loopback gets unauthenticated pickles over the network. Use TLS "
            "(a tls:// address and security=distributed.security.Security(...)), or pass "
            "insecure=True if this network is trusted.")


def _local_cluster(processes, security):
    # The scheduler runs in this process: its HTTP server (the dashboard's home) is given no
    # routes, so nothing but Dask's own protocol answers, and only on loopback.
    options: dict = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}
    with dask.config.set(options):
        return LocalCluster(n_workers=processes or os.cpu_count() or 1, threads_per_worker=1,
                            processes=True, host="127.0.0.1", dashboard_address=None,
                            worker_dashboard_address=None, security=security,
                            scheduler_kwargs={"dashboard": False,
                                              "dashboard_address": "127.0.0.1:0"})


def connect(cluster, processes=None, security=None, insecure=False):
    """A Connection for ``cluster=`` (see the module's docstring)."""
    if isinstance(cluster, Client):
        check_address(cluster.scheduler.address if cluster.scheduler is not None else "", insecure)
        return Connection(cluster)
    if isinstance(cluster, str) and cluster == "local":
        made = _local_cluster(processes, security)
        try:
            return Connection(Client(made, security=security, timeout=_CONNECT_TIMEOUT),
                              owned_client=True, owned_cluster=made)
        except BaseException:
            made.close()
            raise
    if isinstance(cluster, str):
        check_address(cluster, insecure)
        return Connection(Client(cluster, security=security, timeout=_CONNECT_TIMEOUT),
                          owned_client=True)
    address = getattr(cluster, "scheduler_address", None)
    if isinstance(address, str):
        check_address(address, insecure)
        return Connection(Client(cluster, security=security, timeout=_CONNECT_TIMEOUT),
                          owned_client=True)
    raise TypeError("cluster must be a distributed.Client, a Dask cluster (LocalCluster, ...), a "
                    f"scheduler address or 'local', not {type(cluster).__name__}")
