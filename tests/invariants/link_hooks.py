"""A link hook as a team would write one: the invoice id sits inside a structured memo."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"ref=(in_[A-Za-z0-9]+);")


def stripe_invoice(target: Mapping[str, Any]) -> str | None:
    """``ref=in_…;`` anywhere in the ERP memo names the Stripe invoice."""
    found = _REF.search(target.get("memo") or "")
    return found.group(1) if found else None
