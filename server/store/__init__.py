"""Data access. Nothing here commits: the caller (a route, a task) owns its one transaction."""
