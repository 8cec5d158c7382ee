"""Runnable experiments: ``python -m jaxgan.experiments.<name> --help``."""
