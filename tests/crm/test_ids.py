"""Salesforce ids: the case-safe checksum against a published id, normalisation, minting."""

from __future__ import annotations

import pytest

from simulators.crm import ids

# From the Salesforce REST API Developer Guide ("Insert or Update (Upsert) a Record Using an
# External ID"): an Account created by upsert.
PUBLISHED = "00190000001pPvHAAU"


def test_checksum_matches_a_published_salesforce_id() -> None:
    assert ids.checksum(PUBLISHED[:15]) == PUBLISHED[15:]
    assert ids.to18(PUBLISHED[:15]) == PUBLISHED


def test_checksum_by_hand() -> None:
    # Per 5-character chunk, bit i is set when character i is upper case; the number indexes
    # "A".."Z","0".."5". "ABCDE" sets all five bits: 31 -> "5".
    assert ids.checksum("0019000000ABCDE") == "AA5"
    # "a0B00": only position 2 is upper case: 0b00100 = 4 -> "E"; lower-case letters count 0.
    assert ids.checksum("a0B00000000000c") == "EAA"


@pytest.mark.parametrize(
    "value, expected",
    [
        (PUBLISHED[:15], PUBLISHED),  # 15 characters: the suffix is added
        (PUBLISHED, PUBLISHED),
        (PUBLISHED.lower(), PUBLISHED),  # case lost (Excel, case-insensitive stores): restored
        (PUBLISHED.upper(), PUBLISHED),
        ("00190000001pPvHAAV", None),  # a suffix that fits no casing
        ("00190000001pPv", None),
        ("00190000001pPvH!AU", None),
        ("", None),
    ],
)
def test_normalize(value: str, expected: str | None) -> None:
    assert ids.normalize(value) == expected


def test_minted_ids_have_the_prefix_and_a_valid_checksum() -> None:
    minted = ids.mint("006", 12345)
    assert len(minted) == 18 and minted.startswith("006Sm0")
    assert ids.checksum(minted[:15]) == minted[15:]
    assert ids.mint("006", 12346) != minted
    with pytest.raises(ValueError):
        ids.mint("06", 1)
