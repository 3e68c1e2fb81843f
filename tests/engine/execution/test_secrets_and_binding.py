"""Secret parameters on retry, and the embedded cluster binding only the loopback interface."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

import glasspane
from glasspane import ParameterError, pipeline, task


@task
def use_token(token: SecretStr, flag: str) -> int:
    if Path(flag).exists():
        raise RuntimeError("flag file present")
    return len(token.get_secret_value())


@pipeline
def with_secret(token: SecretStr, flag: str):
    return use_token(token, flag)


def test_retry_asks_for_secret_parameters_again(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("fail")
    failed = with_secret.run(token="s3cr3t-value", flag=str(flag), raise_on_failure=False)
    assert failed.state == "failed"
    flag.unlink()
    with pytest.raises(ParameterError, match=r"had secret parameter `token`, which glasspane "
                       r"never stores; give them again"):  # fmt: skip
        glasspane.retry(failed.run_id)
    assert len(glasspane.runs()) == 1  # nothing started
    resumed = glasspane.retry(failed.run_id, secrets={"token": "s3cr3t-value"})
    assert resumed.output == len("s3cr3t-value")
    assert "s3cr3t-value" not in str(glasspane.get_run(resumed.run_id)["params"])


@pytest.mark.dask
def test_embedded_cluster_listens_on_loopback_only() -> None:
    import os

    import psutil

    from glasspane.execution.executors import make_executor

    client = make_executor("dask").client  # type: ignore[attr-defined]
    workers = client.scheduler_info()["workers"]
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert workers and all(a.startswith("tcp://127.0.0.1:") for a in workers)
    pids = [os.getpid(), *client.run(os.getpid).values()]  # the scheduler runs in this process
    listening = [
        conn.laddr
        for pid in pids
        for conn in psutil.Process(pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert listening, "found no listening sockets"
    assert all(addr.ip == "127.0.0.1" for addr in listening), listening
