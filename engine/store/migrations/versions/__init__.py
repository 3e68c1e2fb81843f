"""Migration scripts, one per schema revision, named ``<revision>_<slug>.py``."""
