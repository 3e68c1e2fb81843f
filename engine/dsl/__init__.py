"""The authoring layer: ``@task``, ``@pipeline``, refs and tracing."""
