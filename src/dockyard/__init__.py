"""Dockyard: a self-hosted container image platform for research computing."""

__version__ = "0.1.0"
