"""Deploy targets: where a registered model version is served over HTTP.

A target is a :class:`Deployer`, made by a factory (a class or function taking a
:class:`DeployerContext`) that an installed package declares in the entry-point group
``glasspane.deployers``::

    [project.entry-points."glasspane.deployers"]
    local = "glasspane.integrations.local_deploy:LocalDeployer"

glasspane drives every target the same way (:mod:`glasspane.deploy`), blue/green:

1. :meth:`Deployer.start` starts the new version *beside* whatever serves now and returns once
   it answers ``/health`` at its ``check_url`` (or raises :class:`DeployError`, leaving nothing
   running);
2. glasspane checks it: ``GET /health`` and a sample prediction (``POST /invocations`` with the
   version's input example), which must answer one prediction per row (:func:`check`);
3. :meth:`Deployer.take_over` makes the new one answer at the deployment's address and stops
   the old one. When step 1 or 2 fails, glasspane calls :meth:`Deployer.stop` on the new one:
   the old one never stopped serving.

Every target speaks MLflow's scoring protocol (``/ping``, ``/health``, ``/invocations``), so a
client does not change between targets. ``tests/integrations/deploy_conformance.py`` checks a
target against this contract.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .errors import ConfigError, GlasspaneError

GROUP = "glasspane.deployers"

#: the package extra that brings each built-in target's package
EXTRAS = {"mlflow": "mlflow"}


class DeployError(GlasspaneError):
    """A model version could not be deployed (it did not start, or failed its checks)."""


@dataclass(frozen=True)
class DeployRequest:
    """What a target is asked to serve."""

    #: the deployment's name (``churn-api``)
    deployment: str
    model_name: str
    model_version: int
    #: the model, pickled with joblib: what the ``local`` target serves
    model_file: Path
    #: a directory the target may keep files in (one per deployment and version)
    workdir: Path
    host: str = "127.0.0.1"
    #: the port clients use; None: the target picks (the current one's on a redeploy)
    port: int | None = None
    #: the model itself, for targets that store it in their own format
    model: Any = None
    #: a few input rows (``dataframe_split``: columns, data): the sample prediction glasspane
    #: checks the new version with, and a schema for targets that want one (MLflow's signature)
    input_example: dict[str, Any] | None = None


@dataclass(frozen=True)
class Served:
    """A started model version, as the target describes it (stored with the deployment)."""

    #: where clients reach it (after :meth:`Deployer.take_over`)
    url: str
    #: where it answers before it takes over (the same as ``url`` for some targets)
    check_url: str
    #: its process on this machine, if the target runs one
    pid: int | None = None
    #: what the target needs to find, check and stop it again (JSON values)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    """A deployment's live health."""

    up: bool
    #: why not, or what it said
    detail: str = ""


@runtime_checkable
class Deployer(Protocol):
    """Starts, swaps, checks and stops model servers of one kind."""

    target: str

    def start(self, request: DeployRequest) -> Served:
        """Start ``request``'s model beside anything serving now; return once it answers
        ``/health`` at ``check_url``. Raises DeployError (having stopped what it started)."""
        ...

    def take_over(self, new: Served, old: Served | None) -> Served:
        """Make ``new`` answer at the deployment's address, then stop ``old``; what now
        serves. Raises DeployError when ``new`` cannot take over (``old`` still serving)."""
        ...

    def stop(self, served: Served) -> None:
        """Stop it; nothing happens when it is not running."""
        ...

    def health(self, served: Served) -> Health:
        """Its live health: up when its process runs and ``/health`` answers 200."""
        ...


@dataclass
class DeployerContext:
    """What glasspane hands a target's factory."""

    #: the target's name (``local``)
    name: str
    #: its table in the config file (``[tool.glasspane.deploy-local]``)
    options: dict[str, Any] = field(default_factory=dict)


def factories() -> dict[str, Any]:
    """Entry point name -> entry point, for the ``glasspane.deployers`` group."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=GROUP)}


def make(target: str, options: dict[str, Any] | None = None) -> Deployer:
    """The deploy target ``target``, made through its entry point.

    Raises:
        ConfigError: no installed package declares it (naming those that are), its package is
            missing (naming the extra to install), or it refused its options.
    """
    found = factories()
    if target not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(
            f"deploy target `{target}` is not installed (installed: {known}); fix --target, or "
            f"install the package that declares it in the entry-point group {GROUP}"
        )
    ep = found[target]
    try:
        deployer = ep.load()(DeployerContext(name=target, options=dict(options or {})))
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get(target)
        hint = f'pip install "glasspane[{extra}]"' if extra else f"install `{exc.name}`"
        raise ConfigError(
            f"deploy target `{target}` needs the `{exc.name}` package, which is not installed: "
            f"{hint}"
        ) from exc
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - named with the entry point to fix
        raise ConfigError(
            f"deploy target `{target}` (entry point `{ep.value}`) could not be set up "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(deployer, Deployer):
        raise ConfigError(
            f"deploy target `{target}` (entry point `{ep.value}`) gave {deployer!r}, which is "
            "not a Deployer: it needs `target`, `start`, `take_over`, `stop` and `health`"
        )
    return deployer


def check(url: str, sample: dict[str, Any] | None, *, timeout: float = 30.0) -> None:
    """Check the model server at ``url``: ``/health`` answers 200, and ``sample`` (a
    ``dataframe_split`` dict) posted to ``/invocations`` answers one prediction per row.

    Raises:
        DeployError: either did not, saying what came back.
    """
    status, body = http("GET", f"{url}/health", timeout=timeout)
    if status != 200:
        raise DeployError(f"its health check failed: GET {url}/health answered {status}: {body}")
    if sample is None:
        return
    payload = json.dumps({"dataframe_split": sample}).encode()
    status, body = http("POST", f"{url}/invocations", payload, timeout=timeout)
    if status != 200:
        raise DeployError(
            f"its sample prediction failed: POST {url}/invocations answered {status}: {body}"
        )
    try:
        predictions = json.loads(body)["predictions"]
        count = len(predictions)
    except (ValueError, KeyError, TypeError):
        raise DeployError(
            f"its sample prediction answered no predictions list: {body[:300]}"
        ) from None
    rows = len(sample.get("data", []))
    if count != rows:
        raise DeployError(
            f"its sample prediction answered {count} predictions for {rows} rows: {body[:300]}"
        )


def http(
    method: str, url: str, body: bytes | None = None, *, timeout: float = 5.0
) -> tuple[int, str]:
    """``(status, text)`` of one request (status 0 and the reason when nothing answered)."""
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read().decode(errors="replace")[:2000]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")[:2000]
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, f"no answer ({reason})"
