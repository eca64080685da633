"""Salesforce record ids: key prefixes, the case-safe 3-character checksum, normalisation."""

from __future__ import annotations

import re
import string

# Standard key prefixes (the first three characters of every id of the object).
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "OpportunityLineItem": "00k",
    "Pricebook2": "01s",
    "PricebookEntry": "01u",
    "Product2": "01t",
}
# Prefixes of ids that are not records of a queryable object here.
ORGANIZATION_PREFIX = "00D"
QUERY_LOCATOR_PREFIX = "01g"
NOTIFICATION_PREFIX = "04l"
OUTBOUND_ACTION_PREFIX = "04k"

# The checksum alphabet: a 5-bit value per 5-character chunk, 0..31.
_CHECKSUM_ALPHABET = string.ascii_uppercase + "012345"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ID15 = re.compile(r"^[0-9A-Za-z]{15}$")
_ID18 = re.compile(r"^[0-9A-Za-z]{15}[A-Za-z0-5]{3}$")
# Characters 4-6 of a minted id: Salesforce keeps a pod id and a reserved digit there; ours
# reads "Sm0" so a simulator id is recognisable at a glance.
_POD = "Sm0"


def checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitively unique.

    For each 5-character chunk, bit i is set when character i is an upper-case letter; the
    chunk's 5-bit number indexes ``A..Z0..5``.
    """
    if not _ID15.match(id15):
        raise ValueError(f"not a 15-character id: {id15!r}")
    suffix = []
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if "A" <= ch <= "Z")
        suffix.append(_CHECKSUM_ALPHABET[bits])
    return "".join(suffix)


def to18(id15: str) -> str:
    return id15 + checksum(id15)


def normalize(value: str) -> str | None:
    """The canonical 18-character id for a 15- or 18-character id, or None if it is not one.

    An 18-character id may come back with its case lost (the suffix exists for that): the
    suffix says which letters of the first 15 were upper case, so the case is restored.
    """
    if _ID15.match(value):
        return to18(value)
    if not _ID18.match(value):
        return None
    head, suffix = value[:15], value[15:].upper()
    if checksum(head) == suffix:
        return head + suffix
    restored = []
    for chunk, mark in zip((head[0:5], head[5:10], head[10:15]), suffix, strict=True):
        bits = _CHECKSUM_ALPHABET.index(mark)
        restored.append(
            "".join(ch.upper() if bits >> i & 1 else ch.lower() for i, ch in enumerate(chunk))
        )
    head = "".join(restored)
    return head + suffix if checksum(head) == suffix else None


def mint(prefix: str, number: int) -> str:
    """A deterministic 18-character id: prefix, pod, 9 base-62 digits of ``number``, checksum."""
    if len(prefix) != 3:
        raise ValueError(f"key prefixes have three characters: {prefix!r}")
    digits = []
    for _ in range(9):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    if number:
        raise ValueError("id space of the prefix is exhausted")
    return to18(prefix + _POD + "".join(reversed(digits)))


def prefix_of(record_id: str) -> str:
    return record_id[:3]
