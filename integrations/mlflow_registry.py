"""MLflow's model registry, kept in step with glasspane's by the MLflow tracker.

When a task calls ``glasspane.register_model(name, model, alias=...)`` and the MLflow tracker is
on, the tracker (on the run's ``model_registered`` event):

1. loads the stored model from glasspane's artifact store and saves it in MLflow's format with
   the flavour that fits it (:mod:`glasspane.integrations.mlflow_flavour`: ``sklearn`` for a
   scikit-learn estimator, else ``pyfunc``);
2. logs it as a model of the task's child run (an MLflow logged model named like the glasspane
   model);
3. registers it as a new version of the registered model named by ``registered_model_name``,
   tagged ``glasspane.model``, ``glasspane.model_version`` (glasspane's number),
   ``glasspane.run_id``, ``glasspane.node`` and ``glasspane.seq`` (the event);
4. points the alias at it when ``register_model`` named one (aliases, not stages);
5. records the link of both version numbers in glasspane's metadata store
   (``glasspane models show``).

Options (``[tool.glasspane.mlflow]``): ``registry`` (default true: on with the tracker; false
keeps models in glasspane's registry only) and ``registered_model_name`` (a template with
``{name}``, default ``"{name}"``).

Delivery stays idempotent: before logging, the tracker looks for a version tagged with the
event's run id and sequence number, and reuses it (setting the alias and the link only when
still missing). A model that MLflow cannot save (no scikit-learn estimator and no
``predict``) is skipped, not retried: the tracker warns, and tags the child run
``glasspane.model_error.<name>`` with the reason.

``glasspane models promote`` and ``models alias rm`` move aliases through
:meth:`MlflowRegistry.set_model_alias` and :meth:`MlflowRegistry.remove_model_alias`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from glasspane.errors import ConfigError
from glasspane.events import ModelRegistered
from glasspane.tracking import TrackerContext, TrackerError

from .mlflow_read import MlflowReader, missing

log = logging.getLogger("glasspane.trackers")

RUN_TAG = "glasspane.run_id"
SEQ_TAG = "glasspane.seq"
NODE_TAG = "glasspane.node"
MODEL_TAG = "glasspane.model"
VERSION_TAG = "glasspane.model_version"
#: the alias the event asked for, once it is set (a replay does not set it again)
ALIAS_TAG = "glasspane.alias"
ERROR_TAG = "glasspane.model_error."
#: the longest tag value MLflow keeps
TAG_CHARS = 8000


def already_exists(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS")


class MlflowRegistry(MlflowReader):
    """The registry half of the MLflow tracker (see the module docstring).

    Raises:
        ConfigError: ``registry`` is not a boolean, or ``registered_model_name`` is not a
            template of ``{name}``.
    """

    def __init__(self, context: TrackerContext) -> None:
        super().__init__(context)
        registry = context.option("registry", True)
        if not isinstance(registry, bool):
            raise ConfigError(
                f"tracker `{self.name}`: option `registry` is {registry!r}; give true or false "
                f"in [tool.glasspane.{self.name}]"
            )
        self.registry = registry
        self.model_template = str(context.option("registered_model_name", "{name}"))
        try:
            self.model_template.format(name="model")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"tracker `{self.name}`: option `registered_model_name` = "
                f"{self.model_template!r} is not a template of {{name}} ({exc!r}); use e.g. "
                '"glasspane.{name}"'
            ) from exc

    def registered_name(self, name: str) -> str:
        """The MLflow registered model glasspane model ``name`` goes to."""
        return self.model_template.format(name=name)

    # ---- aliases (glasspane models promote / alias rm) ---------------------------------------

    def set_model_alias(self, external_name: str, external_version: str, alias: str) -> None:
        """Point ``alias`` of MLflow's registered model ``external_name`` at its version
        ``external_version``.

        Raises:
            TrackerError: the server could not be reached or refused.
        """
        with self._guard(f"point alias `{alias}` of `{external_name}` at {external_version}"):
            self._client.set_registered_model_alias(external_name, alias, str(external_version))

    def remove_model_alias(self, external_name: str, alias: str) -> None:
        """Remove ``alias`` of MLflow's registered model ``external_name`` (nothing when it
        has none).

        Raises:
            TrackerError: the server could not be reached or refused.
        """
        with self._guard(f"remove alias `{alias}` of `{external_name}`"):
            try:
                self._client.delete_registered_model_alias(external_name, alias)
            except Exception as exc:
                if not missing(exc):
                    raise

    # ---- model_registered ------------------------------------------------------------------

    def _register(self, event: ModelRegistered, run_id: str, experiment_id: str) -> None:
        """Log ``event``'s model into MLflow run ``run_id`` and register it (once per event);
        set its alias and record the link (see the module docstring). MLflow calls raise;
        the caller guards them."""
        if not self.registry:
            return
        external = self.registered_name(event.name)
        number = self.context.model_version(event) if self.context.model_version else None
        version = self._version_of(external, event)
        if version is None:
            model_id = self._log_model(event, run_id, experiment_id)
            if model_id is None:
                return
            try:
                self._client.create_registered_model(external)
            except Exception as exc:  # another run registered it first
                if not already_exists(exc):
                    raise
            tags = {
                MODEL_TAG: event.name, RUN_TAG: event.run_id, NODE_TAG: event.node,
                SEQ_TAG: str(event.seq),
            }  # fmt: skip
            if number is not None:
                tags[VERSION_TAG] = str(number)
            version = self._client.create_model_version(
                external, f"models:/{model_id}", run_id=run_id, tags=tags, model_id=model_id
            )
        tags = dict(version.tags or {})
        if number is not None and tags.get(VERSION_TAG) != str(number):
            self._client.set_model_version_tag(external, version.version, VERSION_TAG, str(number))
        if event.alias and tags.get(ALIAS_TAG) != event.alias:
            self._client.set_registered_model_alias(external, event.alias, version.version)
            self._client.set_model_version_tag(external, version.version, ALIAS_TAG, event.alias)
        if number is not None and self.context.link_model is not None:
            uri = f"models:/{external}/{version.version}"
            self.context.link_model(
                event.name, number, self.name, external, str(version.version), uri
            )

    def _version_of(self, external: str, event: ModelRegistered) -> Any:
        """The MLflow model version ``event`` registered before, or None."""
        found = self._client.search_model_versions(
            f"name = '{external}' and tags.`{RUN_TAG}` = '{event.run_id}' "
            f"and tags.`{SEQ_TAG}` = '{event.seq}'"
        )
        return found[0] if found else None

    def _log_model(self, event: ModelRegistered, run_id: str, experiment_id: str) -> str | None:
        """Log ``event``'s model as a model of MLflow run ``run_id``; its model id, or None
        when MLflow cannot save it (said, and tagged on the run)."""
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus
        from mlflow.models import Model

        from .mlflow_flavour import save_model

        if self.context.artifacts is None:
            raise TrackerError(
                f"tracker `{self.name}`: model `{event.name}` has no artifact store to be read "
                "from; run the pipeline through a glasspane Workspace"
            )
        model = self.context.artifacts.get(event.artifact)
        logged = self._client.create_logged_model(
            experiment_id, name=event.name, source_run_id=run_id,
            tags={RUN_TAG: event.run_id, SEQ_TAG: str(event.seq), MODEL_TAG: event.name},
        )  # fmt: skip
        folder = Path(tempfile.mkdtemp(prefix="glasspane-model-"))
        try:
            meta = Model(
                artifact_path=logged.artifact_location, model_uuid=logged.model_id,
                run_id=run_id, model_id=logged.model_id,
            )  # fmt: skip
            try:
                save_model(model, folder / "model", mlflow_model=meta)
            except Exception as exc:  # noqa: BLE001 - the same model fails again: not retried
                self._client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
                reason = f"{type(exc).__name__}: {exc}"
                self._client.set_tag(run_id, f"{ERROR_TAG}{event.name}", reason[:TAG_CHARS])
                log.warning(
                    "tracker `%s`: model `%s` registered by run %s (task `%s`) was not "
                    "registered in MLflow: it could not be saved in MLflow's format (%s); it "
                    "stays in glasspane's registry",
                    self.name, event.name, event.run_id, event.node, reason,
                )  # fmt: skip
                return None
            self._client.log_model_artifacts(logged.model_id, str(folder / "model"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self._client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        self._client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return str(logged.model_id)
