"""Alembic migrations of the metadata store; run them with :func:`glasspane.store.upgrade`."""
