"""The ``mlflow`` deploy target (``mlflow models serve --env-manager local``) against the
deploy contract. MLflow's server names no version in its responses, and a redeploy moves the
deployment to a new port (two servers cannot share one)."""

from __future__ import annotations

from deploy_conformance import DeployerContract


class TestMlflowDeployer(DeployerContract):
    target = "mlflow"
    version_header = False
    same_url = False
