"""Trust marks: official and verified publisher workspaces, Dockerfile visible, built here,
signed (cosign signatures verified against the workspace's trusted keys) and SBOM attached."""
