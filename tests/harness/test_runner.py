"""The scenario runner end to end: steps, settling, verdicts, determinism and the reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.config import load_config
from harness.report import write_html, write_json, write_junit
from harness.runner import ScenarioResult, run_scenario
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_there_are_at_least_fifteen_scenarios_and_all_load() -> None:
    assert len(SCENARIOS) >= 15
    names = [load_scenario(path).name for path in SCENARIOS]
    assert len(set(names)) == len(names)


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return load_config(ROOT / "harness.toml")


@pytest.fixture(scope="module")
def first(config) -> ScenarioResult:  # type: ignore[no-untyped-def]
    return run_scenario(load_scenario(ROOT / "scenarios/01_new_business.yaml"), config, cwd=ROOT)


def test_new_business_passes_against_the_reference_integration(first: ScenarioResult) -> None:
    assert first.passed, [str(v) for v in first.violations] + [first.error or ""]
    kinds = [s.kind for s in first.steps]
    assert kinds[0] == "fixtures" and kinds[-1] == "final"
    assert all(s.settled for s in first.steps if s.kind != "fixtures")
    # The deal's lineage reaches the ERP and the subledger.
    (deal,) = first.lineage
    assert deal["subscription"] and deal["revenue_contract"]
    assert all(inv["erp_invoice"] for inv in deal["invoices"] if inv["status"] != "draft")


def test_same_seed_same_ids_amounts_and_verdict(config, first: ScenarioResult) -> None:  # type: ignore[no-untyped-def]
    again = run_scenario(load_scenario(ROOT / "scenarios/01_new_business.yaml"), config, cwd=ROOT)
    assert again.fingerprint == first.fingerprint
    assert again.names == first.names
    other = run_scenario(
        load_scenario(ROOT / "scenarios/01_new_business.yaml"), config, cwd=ROOT, seed=7
    )
    assert other.names != first.names  # ids come from the seed


def test_a_wrong_figure_is_a_violation_naming_the_figure(config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "scenarios/01_new_business.yaml").read_text()
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        text.replace("invoice_total:acme_new:1: 30000", "invoice_total:acme_new:1: 30001")
    )
    result = run_scenario(load_scenario(wrong), config, cwd=ROOT)
    assert not result.passed
    assert any(
        v.rule == "EXPECT" and "invoice_total:acme_new:1" in v.message for v in result.violations
    )


def test_a_missing_integration_is_a_clear_error_not_a_hang(config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert config.integration is not None
    broken = config.model_copy(
        update={
            "integration": config.integration.model_copy(
                update={"command": ["python", "-c", "import sys; print('boom'); sys.exit(3)"]}
            )
        }
    )
    result = run_scenario(load_scenario(ROOT / "scenarios/01_new_business.yaml"), broken, cwd=ROOT)
    assert result.error is not None and "boom" in result.error
    assert not result.passed


def test_reports_carry_the_verdict(first: ScenarioResult, tmp_path: Path) -> None:
    failing = ScenarioResult("broken one", "x.yaml", 1, first.start_at, error="it broke")
    results = [first, failing]
    write_junit(results, tmp_path / "j.xml")
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("errors") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["broken one"].find("error") is not None
    assert cases[first.name].find("failure") is None
    write_json(results, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is False
    assert [s["passed"] for s in data["scenarios"]] == [True, False]
    write_html(results, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    (deal,) = first.lineage
    assert deal["subscription"] in page and "Recognised revenue" in page


CRASHES_ON_FIRST_WEBHOOK = """
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def do_POST(self):
        print("received a webhook; crashing", flush=True)
        os._exit(7)
    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def test_an_integration_that_dies_mid_run_is_named_with_its_last_output(
    config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "crashy.py"
    script.write_text(CRASHES_ON_FIRST_WEBHOOK)
    crashy = config.model_copy(
        update={
            "integration": config.integration.model_copy(
                update={"command": ["python", str(script)]}
            )
        }
    )
    result = run_scenario(load_scenario(ROOT / "scenarios/01_new_business.yaml"), crashy, cwd=ROOT)
    died = [v for v in result.violations if v.rule == "INTEGRATION"]
    assert died and "crashing" in died[0].message
    assert not result.passed
