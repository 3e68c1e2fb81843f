"""The glasspane web UI: a Starlette app serving the runs, graphs and lineage the engine records."""
