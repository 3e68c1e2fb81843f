"""Deploying registered model versions: ``glasspane deploy``, ``glasspane.deploy`` in a task,
``glasspane deployments list|stop``.

Every deploy is blue/green, whatever the target (see :mod:`glasspane.deploying`): the new
version starts beside the one serving, must answer its health check and a sample prediction
(the version's ``input_example``), and only then takes over; if it fails, it is stopped, the
old one keeps serving, the failure is kept in the deployment's history (``rejected``) and the
error says why. The deployment row names the version that serves, so "which model answers on
port 5001?" is one query, and through the version's run and task, its code and data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

from . import deploying
from .deploying import DeployError, DeployRequest, Health, Served
from .errors import InvalidArgument, NotFound
from .store.registry import check_name, parse_ref
from .types import ArtifactInfo

if TYPE_CHECKING:
    from .workspace import Workspace

T = TypeVar("T")


@dataclass(frozen=True)
class Deployed:
    """What :func:`deploy` did."""

    name: str
    target: str
    model_name: str
    model_version: int
    url: str
    #: the version that served before (None on a first deploy)
    replaced: int | None


def deploy(
    ref: str,
    *,
    name: str,
    target: str = "local",
    port: int | None = None,
    host: str = "127.0.0.1",
    workspace: Workspace | None = None,
) -> Deployed:
    """Serve the model version ``ref`` (``churn@champion``, ``churn/3``) as deployment
    ``name`` on ``target`` (``local``: glasspane's model server, or ``mlflow``), blue/green
    when ``name`` already serves: the new version takes over only once it answered its health
    check and a sample prediction (its ``input_example``).

    Inside a task, it deploys from the run's stores and records the run on the deployment
    (give the task ``cache=False``, or a cached rerun will not deploy); outside, from
    ``workspace`` (default: the configured one).

    Raises:
        InvalidArgument: a bad reference, name or port; ``name`` serves on another target; the
            port is another deployment's.
        NotFound: no such model, version or alias.
        ConfigError: no such target installed.
        DeployError: the new version did not start or failed its checks (the old one still
            serves; the message says why).
    """
    return _in(
        workspace,
        lambda stores, run_id: deploy_with(
            stores, ref, name=name, target=target, port=port, host=host, run_id=run_id
        ),
    )


def deployments(*, workspace: Workspace | None = None, live: bool = True) -> list[dict[str, Any]]:
    """Every deployment (name, target, model_name, model_version, url, state, ...), with
    ``health`` checked now (``up``, ``down`` with ``health_detail`` saying why, or
    ``stopped``) when ``live``."""
    return _in(workspace, lambda stores, _: listing(stores, live=live))


def stop_deployment(name: str, *, workspace: Workspace | None = None) -> dict[str, Any]:
    """Stop deployment ``name`` (nothing happens when it is stopped already); its row.

    Raises:
        NotFound: no such deployment (naming those there are).
    """
    return _in(workspace, lambda stores, _: stop(stores, name))


def _in(workspace: Workspace | None, work: Callable[[Any, str | None], T]) -> T:
    """``work(stores, run_id)`` on ``workspace``; without one, on the run's stores with the
    run's id inside a task, else on the configured Workspace."""
    from .execution.context import current_context

    ctx = current_context()
    if ctx is not None and workspace is None:
        with _TaskStores(ctx) as stores:
            return work(stores, ctx.run_id)
    return work(workspace or _default(), None)


def _default() -> Workspace:
    from .api import default_workspace

    return default_workspace()


class _TaskStores:
    """The stores of the run a task is in, shaped like the part of a Workspace deploying uses."""

    def __init__(self, ctx: Any) -> None:
        from .config import load_settings
        from .store.engines import is_sqlite, parse_url, sqlite_path
        from .store.metadata import MetadataStore

        if ctx.metadata_url is None or ctx.artifacts is None:
            raise DeployError(
                f"glasspane.deploy in task `{ctx.task}`: this task has no access to the run's "
                "metadata store; deploy after the run, with `glasspane deploy`"
            )
        self.store = MetadataStore(ctx.metadata_url, create=False)
        self.artifacts = ctx.artifacts
        url = parse_url(ctx.metadata_url)
        path = sqlite_path(url) if is_sqlite(url) else None
        home = path.parent if path is not None else load_settings().home
        self.settings = SimpleNamespace(home=home)

    def reader(self) -> Any:
        return self.store

    def __enter__(self) -> _TaskStores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def deploy_with(
    workspace: Any,
    ref: str,
    *,
    name: str,
    target: str = "local",
    port: int | None = None,
    host: str = "127.0.0.1",
    run_id: str | None = None,
) -> Deployed:
    """:func:`deploy` from ``workspace``'s stores (a Workspace, or a task's run stores).

    Raises:
        InvalidArgument: a bad reference, name or port; ``name`` serves on another target; the
            port is another deployment's.
        NotFound: no such model, version or alias.
        ConfigError: no such target installed.
        DeployError: the new version did not start or failed its checks (the old one still
            serves; the message says why).
    """
    parse_ref(ref)
    check_name(name, "deployment")
    if port is not None and not 1 <= port <= 65535:
        raise InvalidArgument(f"--port must be 1 to 65535, not {port}")
    store = workspace.store
    version = store.resolve_model(ref)
    current = store.deployment(name)
    if current is not None and current["state"] == "serving" and current["target"] != target:
        raise InvalidArgument(
            f"deployment `{name}` serves on target `{current['target']}`, not `{target}`; stop "
            f"it first (glasspane deployments stop {name}) or choose another --name"
        )
    deployer = deploying.make(target)
    old = served_of(current) if current is not None and current["state"] == "serving" else None
    if port is None and current is not None:
        port = (current.get("details") or {}).get("port")
    _check_port_free_of_others(workspace, name, host, port)
    model_name, model_version = version["name"], int(version["version"])
    folder = Path(workspace.settings.home).expanduser() / "deployments" / name
    workdir = folder / f"v{model_version}-{time.strftime('%Y%m%dT%H%M%S')}"
    workdir.mkdir(parents=True, exist_ok=True)
    model = workspace.artifacts.get(ArtifactInfo.from_dict(version))
    model_file = workdir / "model.joblib"
    import joblib

    joblib.dump(model, model_file)
    request = DeployRequest(
        deployment=name, model_name=model_name, model_version=model_version,
        model_file=model_file, workdir=workdir, host=host, port=port, model=model,
        input_example=version.get("input_example"),
    )  # fmt: skip
    row = {
        "name": name, "target": target, "model_name": model_name,
        "model_version": model_version, "ref": ref, "run_id": run_id,
    }  # fmt: skip
    keeps = (
        f"version {current['model_version']} keeps serving at {current['url']}"
        if old is not None else "nothing was deployed"
    )  # fmt: skip
    try:
        new = deployer.start(request)
    except DeployError as exc:
        store.note_deployment(row, "rejected", str(exc))
        raise DeployError(
            f"{_what(name, ref, model_version, target)} failed: {exc}; {keeps}"
        ) from None
    try:
        deploying.check(new.check_url, version.get("input_example"))
        served = deployer.take_over(new, old)
    except DeployError as exc:
        deployer.stop(new)
        store.note_deployment(row, "rejected", str(exc))
        raise DeployError(
            f"{_what(name, ref, model_version, target)} failed: {exc}; {keeps}"
        ) from None
    replaced = int(current["model_version"]) if old is not None and current else None
    store.save_deployment(
        {
            **row, "url": served.url, "pid": served.pid, "state": "serving",
            "details": {**served.details, "check_url": served.check_url},
        },
        "redeployed" if old is not None else "deployed",
        None if replaced is None else f"replaced version {replaced}",
    )  # fmt: skip
    return Deployed(
        name=name, target=target, model_name=model_name, model_version=model_version,
        url=served.url, replaced=replaced,
    )  # fmt: skip


def stop(workspace: Any, name: str) -> dict[str, Any]:
    """Stop deployment ``name``; its row (now ``stopped``).

    Raises:
        NotFound: no such deployment (naming those there are).
    """
    row = get(workspace, name)
    if row["state"] == "serving":
        deploying.make(row["target"]).stop(served_of(row))
    workspace.store.set_deployment_state(name, "stopped")
    return row


def get(workspace: Any, name: str) -> dict[str, Any]:
    """Deployment ``name``'s row.

    Raises:
        NotFound: there is none (naming those there are).
    """
    row = workspace.reader().deployment(name)
    if row is None:
        names = ", ".join(f"`{d['name']}`" for d in workspace.reader().deployments()) or "none"
        raise NotFound(
            f"no deployment `{name}` (deployments: {names}); deploy one with "
            f"`glasspane deploy MODEL@ALIAS --name {name}`"
        )
    return row


def listing(workspace: Any, *, live: bool = True) -> list[dict[str, Any]]:
    """Every deployment's row, with ``health`` (``up``/``down``/``stopped``) and
    ``health_detail`` checked now when ``live``."""
    try:
        rows = workspace.reader().deployments()
    except NotFound:  # nothing ran here yet
        return []
    for row in rows:
        if row["state"] != "serving":
            row["health"], row["health_detail"] = "stopped", ""
        elif live:
            health = health_of(row)
            row["health"] = "up" if health.up else "down"
            row["health_detail"] = health.detail
    return rows


def health_of(row: dict[str, Any]) -> Health:
    """The live health of a serving deployment's row."""
    try:
        return deploying.make(row["target"]).health(served_of(row))
    except Exception as exc:  # noqa: BLE001 - a target that cannot check says down, with why
        return Health(False, f"{type(exc).__name__}: {exc}")


def served_of(row: dict[str, Any]) -> Served:
    details = dict(row.get("details") or {})
    return Served(
        url=row["url"], check_url=details.get("check_url", row["url"]), pid=row.get("pid"),
        details=details,
    )  # fmt: skip


def _what(name: str, ref: str, version: int, target: str) -> str:
    return f"deploying {ref} (version {version}) as `{name}` on `{target}`"


def _check_port_free_of_others(
    workspace: Workspace, name: str, host: str, port: int | None
) -> None:
    if port is None:
        return
    for other in workspace.reader().deployments():
        details = other.get("details") or {}
        if (
            other["name"] != name and other["state"] == "serving" and details.get("port") == port
            and details.get("host", host) == host
        ):  # fmt: skip
            raise InvalidArgument(
                f"port {port} is deployment `{other['name']}`'s; choose another --port, or "
                f"stop it first (glasspane deployments stop {other['name']})"
            )
