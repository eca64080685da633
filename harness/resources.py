"""Where the files shipped with the harness are: bundled scenarios and the reference config."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _data(name: str) -> Path:
    # harness/_data links into the repository; the wheel carries copies (package data).
    return Path(str(files("harness") / "_data" / name))


def bundled_scenarios() -> Path:
    """The lifecycle scenarios that ship with the harness (the repository's scenarios/)."""
    return _data("scenarios")


def reference_config() -> Path:
    """harness.toml for the reference integration (what `harness init` writes)."""
    return _data("harness.toml")
