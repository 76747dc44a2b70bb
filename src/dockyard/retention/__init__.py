"""Retention rules: which tags and untagged manifests a workspace lets go, on a schedule."""
