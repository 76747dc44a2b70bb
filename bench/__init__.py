"""Side-by-side benchmark of Dockyard and the reference registry (CNCF Distribution 2.8).

Run from the repository root: ``python -m bench`` (see ``bench/README.md``).
"""
