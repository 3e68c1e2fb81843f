"""The SQL metadata store: runs, task runs, artifacts, lineage and metrics.

:class:`MetadataStore` is the only code in glasspane that issues SQL; :func:`upgrade` brings a
database to the newest schema (the store calls it when it opens).
"""

from .metadata import MetadataStore
from .migrate import database_location, upgrade

__all__ = ["MetadataStore", "database_location", "upgrade"]
