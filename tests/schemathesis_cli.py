"""The independent schemathesis CLI, bounded and seeded, as the contract tests run it."""

from __future__ import annotations

import sys
from pathlib import Path


def schemathesis_command(
    config: Path, contract: Path, url: str, headers: dict[str, str], examples: int
) -> list[str]:
    """`schemathesis run --checks all` of one contract against one URL: one worker, seed 1, no
    example database, so a run is repeatable and writes nothing into the tree."""
    return [
        str(Path(sys.executable).with_name("schemathesis")),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        str(contract),
        "--url",
        url,
        *[arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")],
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--seed",
        "1",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
    ]
