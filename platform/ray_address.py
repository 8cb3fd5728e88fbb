"""Probe a ``--address`` before ``ray.init`` joins it: one that points nowhere, or at a port that is not a Ray GCS
or Ray client server, fails in seconds with one line naming the address, instead of hanging in ``ray.init``.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from elm.config import ConfigError

CLIENT_SCHEME = "ray://"
CLIENT_DEFAULT_PORT = 10001  # `ray start --head`'s Ray client server
PROBE_TIMEOUT_S = 10.0  # how long an --address may refuse connections (a cluster still starting) before we give up
PROBE_RETRY_S = 0.5
RPC_TIMEOUT_S = 5.0  # a GCS answers its cluster id in milliseconds; a port that is not one never does
ADDRESS_FORMS = f"expected HOST:PORT (the GCS address 'ray start --head' prints), {CLIENT_SCHEME}HOST[:PORT] or auto"


def check_address(address: str, timeout_s: float = PROBE_TIMEOUT_S, rpc_timeout_s: float = RPC_TIMEOUT_S) -> None:
    """Fail fast unless a Ray cluster answers at ``address``: ``HOST:PORT`` (a GCS, as ``ray start --head`` prints
    it; ``auto`` for the one started on this machine) or ``ray://HOST[:PORT]`` (a Ray client server).

    Connects to the host and port Ray would dial, for up to ``timeout_s`` (a cluster may still be starting), then
    asks a GCS for its cluster id, or waits for a client server's gRPC handshake, for up to ``rpc_timeout_s``.
    ray.init itself would retry for minutes, and ignore SIGTERM while it does.

    Raises:
        ConfigError: naming ``address`` and what answered there, if anything.
    """
    from ray._private.services import canonicalize_bootstrap_address

    client = address.startswith(CLIENT_SCHEME)
    try:
        dialled = address[len(CLIENT_SCHEME) :] if client else canonicalize_bootstrap_address(address)
    except ValueError as e:
        raise ConfigError(f"--address {address}: {e}; {ADDRESS_FORMS}") from None
    if dialled is None:  # "local", or "auto" with no cluster started here: ray.init says which
        return
    host, port = _host_port(dialled, CLIENT_DEFAULT_PORT if client else None, address)
    target = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    try:
        answered = wait_for_port(host, port, timeout_s)
    except socket.gaierror as e:
        raise ConfigError(f"--address {address}: the host {host!r} does not resolve ({e})") from None
    if not answered:
        dials = "" if client or dialled == address else f"Ray dials {target}; "  # 127.0.0.1 becomes the node IP
        raise ConfigError(
            f"no Ray cluster answers at {address} ({dials}tried for {timeout_s:g} s): start one with "
            "'ray start --head' or drop --address (and RAY_ADDRESS)"
        )
    problem = _client_server_problem(target, rpc_timeout_s) if client else _gcs_problem(target, address, rpc_timeout_s)
    if problem:
        raise ConfigError(f"--address {address}: {problem}")


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Whether something accepts a TCP connection at ``host:port`` within ``timeout_s`` (retrying refusals).

    Raises:
        socket.gaierror: ``host`` does not resolve.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=max(deadline - time.monotonic(), PROBE_RETRY_S)).close()
            return True
        except socket.gaierror:
            raise
        except OSError:  # refused (nothing listens yet) or timed out
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(PROBE_RETRY_S, left))


def _host_port(hostport: str, default_port: int | None, address: str) -> tuple[str, int]:
    parts = urlsplit("//" + hostport)
    try:
        port = parts.port or default_port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigError(f"--address {address}: {ADDRESS_FORMS}")
    return parts.hostname, port


def _gcs_problem(target: str, address: str, timeout_s: float) -> str | None:
    """What is wrong with the GCS at ``target`` (asked for its cluster id as ray.init would), or None."""
    import grpc
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    channel = init_grpc_channel(target)  # TLS and token authentication as this process's ray.init would use them
    try:
        gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
            gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s
        )
        return None
    except grpc.RpcError as e:
        code = e.code()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return (
                "this Ray cluster requires token authentication: set RAY_AUTH_MODE=token, with its token in "
                "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
            )
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return (
                f"this port answers gRPC but is not a Ray GCS (a Ray client server is joined as "
                f"{CLIENT_SCHEME}{address}); pass the address 'ray start --head' prints"
            )
        return (
            f"something listens here but does not answer as a Ray GCS within {timeout_s:g} s "
            f"({code.name}); pass the address 'ray start --head' prints"
        )
    finally:
        channel.close()


def _client_server_problem(target: str, timeout_s: float) -> str | None:
    """What is wrong with the Ray client server at ``target`` (its gRPC handshake), or None."""
    import grpc
    from ray._private.grpc_utils import init_grpc_channel

    channel = init_grpc_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
        return None
    except grpc.FutureTimeoutError:
        return (
            f"something listens here but no Ray client server answers within {timeout_s:g} s "
            f"(ray start --head serves one on port {CLIENT_DEFAULT_PORT})"
        )
    finally:
        channel.close()
