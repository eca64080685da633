"""Integrations that lose or duplicate documents on purpose, to prove the load verdict."""
