"""`harness contracts test`: schemathesis conformance of a contract against a running API."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("test", help="(not yet built)")
    parser.set_defaults(func=lambda _args: 2)
