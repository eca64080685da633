"""Locust suites for the close period: users, shapes, locustfiles and payload builders.

They run in Locust's own processes, read the world from the target.json `harness load` writes
and never import the harness."""
