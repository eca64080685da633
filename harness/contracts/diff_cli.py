"""`harness contracts diff`: schemathesis classify changes between two contracts."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("diff", help="(not yet built)")
    parser.set_defaults(func=lambda _args: 2)
