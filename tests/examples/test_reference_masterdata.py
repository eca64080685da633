"""The reference integration and master data made inactive: refused postings are set aside with
a reason naming the document and the inactive record, and replayed once after reactivation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_config
from harness.pytest_plugin import describe
from harness.runner import run_scenario
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("scenario", "cause", "documents"),
    [
        ("44_erp_item_inactive_month_end", "the ERP item SUBSCRIPTION is inactive", 2),
        ("45_subsidiary_inactive_renewal", "the ERP subsidiary Finsim Ltd. is inactive", 1),
    ],
)
def test_a_refusal_for_inactive_master_data_is_explained_set_aside_and_replayed_once(
    scenario: str, cause: str, documents: int
) -> None:
    path = ROOT / "scenarios" / f"{scenario}.yaml"
    result = run_scenario(load_scenario(path), load_config(ROOT / "harness.toml"), cwd=ROOT)
    assert result.passed, describe(result)
    items = result.exceptions["items"]
    # One item per refused invoice (a renewal refused once, never listed twice).
    assert sorted({i["document"] for i in items}) == sorted(i["document"] for i in items)
    assert len(items) == documents
    for item in items:
        assert item["reason"].startswith(f"invoice {item['document']} (invoice.finalized)")
        assert cause in item["reason"] and "reference key" in item["reason"]
        assert item["status"] == "resolved" and len(item["replayed_at"]) == 1
    assert result.exceptions["open"] == 0
