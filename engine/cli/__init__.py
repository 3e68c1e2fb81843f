"""The ``glasspane`` command line."""
