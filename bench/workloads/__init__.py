"""The workloads, each run against both registries round after round (see ``bench.runner``)."""
