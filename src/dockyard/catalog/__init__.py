"""The catalog ("Docker Repository"): images owned by workspaces, their versions (internal
or external), statuses, platforms, sizes and history."""
