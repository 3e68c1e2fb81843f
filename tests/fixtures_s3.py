"""A pytest plugin giving tests a real S3-protocol server: moto, in server mode.

``s3_endpoint`` (session scope) starts ``python -m moto.server`` as a separate process on
127.0.0.1 at a free port, waits until it answers HTTP, and yields its URL. At session end the
process is stopped by its PID (SIGTERM, then SIGKILL if it lingers).

``s3_root`` (function scope) creates a fresh bucket and yields ``s3://BUCKET/prefix``, with
the standard AWS variables set for the test (dummy credentials, ``us-east-1``, and
``AWS_ENDPOINT_URL`` pointing at the server), so that glasspane's fsspec/s3fs, boto3 and any
Dask worker spawned during the test all reach the local server and nothing else.
``s3_client`` is a boto3 client for that server, to look at or tamper with objects directly.

When moto, boto3 or s3fs is missing, tests using these fixtures skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SKIP_REASON = "moto[server], boto3 and s3fs are needed for S3 tests: pip install -e '.[test]'"
START_TIMEOUT = 30
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance-metadata service
}
# Variables from the developer's shell that would send requests elsewhere or change signing.
UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL_S3")


def _missing() -> bool:
    return any(importlib.util.find_spec(name) is None for name in ("moto", "boto3", "s3fs"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if not with 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _start(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start moto on a free port; retry on another port if that one was taken meanwhile."""
    for _ in range(3):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            if _answers(url):
                return proc, url
            time.sleep(0.05)
        _stop(proc)
    raise RuntimeError(f"moto server did not start; its output:\n{log.read_text()}")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server running for the whole session, e.g. ``http://127.0.0.1:PORT``."""
    if _missing():
        pytest.skip(SKIP_REASON)
    with tempfile.TemporaryDirectory(prefix="glasspane-moto-") as tmp:
        proc, url = _start(Path(tmp) / "moto.log")
        try:
            yield url
        finally:
            _stop(proc)


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    """A boto3 S3 client for the moto server, with explicit dummy credentials (session scope)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    )


def _forget_s3fs_instances() -> None:
    # fsspec reuses filesystem instances (and their listing caches) across tests: start clean.
    with contextlib.suppress(ImportError):
        from s3fs import S3FileSystem

        S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3_root(
    s3_endpoint: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """``s3://BUCKET/prefix`` in a fresh bucket, with the AWS variables aimed at the server."""
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    # No ~/.aws from the machine running the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    bucket = f"glasspane-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    _forget_s3fs_instances()
    yield f"s3://{bucket}/prefix"
    _forget_s3fs_instances()
