"""Real servers on 127.0.0.1 for slow tests (moto's S3, an MLflow tracking server): started in their own process
group, waited for, and always stopped by the test (their group only, nothing else on the machine)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

BIN = Path(sys.executable).parent
START_S = 120.0  # a cold server start on a loaded 2-core machine
# For `mlflow server` and the CLI that talks to it: no telemetry; no background job runner (no test needs it, and it
# is one more cold Python start).
MLFLOW_QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def wait_for_http(
    url: str, proc: subprocess.Popen, log: Path, timeout: float = START_S, only_200: bool = False
) -> None:
    """Poll ``url`` until it answers (any HTTP status, or only 200 with ``only_200``); fail with the server's log if
    it dies or never answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited with code {proc.returncode} before answering:\n{tail(log)}")
        try:
            with opener.open(url, timeout=5) as resp:
                if not only_200 or resp.status == 200:
                    return
        except urllib.error.HTTPError:
            if not only_200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"{proc.args[0]} did not answer {url} within {timeout:.0f} s:\n{tail(log)}")


def stop(proc: subprocess.Popen, term_grace_s: float = 20) -> None:
    """SIGTERM the process group of ``proc`` (started in its own session), then SIGKILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, term_grace_s), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def server(
    cmd: list[str],
    workdir: Path,
    probe_path: str,
    port: int,
    env: dict[str, str] | None = None,
    start_s: float = START_S,
    only_200: bool = False,
) -> Iterator[str]:
    """Run ``cmd`` (listening on 127.0.0.1:``port``) until the block ends; yields its base URL once ``probe_path``
    answers (``wait_for_http``, within ``start_s``)."""
    log = workdir / f"{Path(cmd[0]).name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(url + probe_path, proc, log, start_s, only_200)
        yield url
    finally:
        stop(proc)


@contextlib.contextmanager
def mlflow_server(
    workdir: Path, backend_store_uri: str, *options: str, start_s: float = START_S, only_200: bool = False
) -> Iterator[str]:
    """``mlflow server`` (one worker, ``MLFLOW_QUIET``) over ``backend_store_uri``, plus ``options``, on
    127.0.0.1:<free port> until the block ends; yields its base URL once /health answers."""
    port = free_port()
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        *options,
    ]
    with server(cmd, workdir, "/health", port, env=MLFLOW_QUIET, start_s=start_s, only_200=only_200) as url:
        yield url


S3_ENV_KEYS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_DISABLED",
)


@contextlib.contextmanager
def moto_s3(workdir: Path, bucket: str) -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1 with ``bucket`` created; yields the standard AWS variables that point at it."""
    port = free_port()
    with server([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], workdir, "/", port) as url:
        env = {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        import boto3

        boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        yield env


def s3_keys(env: dict[str, str], bucket: str, prefix: str) -> list[str]:
    """Every object key under ``prefix`` in ``bucket``."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys
