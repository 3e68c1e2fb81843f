"""Adapters that connect glasspane to the tools a team already uses (trackers, registries,
deploy targets). Each adapter is its own module and imports its third-party package lazily."""
