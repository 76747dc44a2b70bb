"""Who owns what, and who may do what there: workspaces with their members and teams
(:mod:`.workspaces`), repository visibility and per-repository grants (:mod:`.repositories`),
access requests and the notifications they send (:mod:`.requests`), and the bundle of identity
services the edges use (:mod:`.services`).

The membership tables that the authorizer reads to decide (workspaces, memberships, teams,
robots, permissions, repositories, grants) are defined in :mod:`dockyard.auth.tables`, one layer
down, so that the authorizer never imports upwards; this package changes them."""
