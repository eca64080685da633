"""Declaring an integration: scope, links and rule selection — bad declarations fail at load
with file, key and the known names (exit 2, no traceback), and every report says what was
not judged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from harness.config import ConfigError, HarnessConfig, load_config
from harness.handoffs import HANDOFFS, LINKS
from harness.invariants import REGISTRY
from harness.judging import Judge
from harness.report import judged_lines, write_html, write_json, write_junit
from harness.results import ScenarioResult
from harness.standin import effective_links, missing_handoffs, standin_config

ROOT = Path(__file__).resolve().parents[2]


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "harness.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "key", "names"),
    [
        ('[scope]\nowns = ["erp.invoice"]\n', "scope.owns", ["erp.invoices", "crm.provision"]),
        ('[links]\n"erp.invoices" = { external_id = "{invoice.id}" }\n', "links", ["erp.invoice"]),
        (
            '[links]\n"erp.invoice" = { external_id = "X-{invoice.idd}" }\n',
            "links",
            ["{invoice.id}", "{invoice.number}"],
        ),
        ('[links]\n"erp.invoice" = { metadata = "x" }\n', "links", ["external_id", "field"]),
        ('[links]\n"erp.invoice" = { field = "stripe_id" }\n', "links", ["custbody"]),
        (
            '[links.crm_writeback]\nopportunity_sub = "X__c"\n',
            "links",
            ["opportunity_subscription"],
        ),
    ],
)
def test_a_bad_declaration_names_the_file_the_key_and_the_known_names(
    tmp_path: Path, body: str, key: str, names: list[str]
) -> None:
    path = _toml(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and key in message, message
    assert all(name in message for name in names), message


def test_the_reference_conventions_are_written_out_and_are_the_defaults() -> None:
    config = load_config(ROOT / "harness.toml")
    assert config.scope.owns == list(HANDOFFS)
    assert set(config.links.links) == set(LINKS)
    for link_id, spec in LINKS.items():
        assert config.links.link(link_id).model_dump(exclude_none=True) == spec.default
    assert HarnessConfig().links.link("erp.payment").external_id == "pay_{invoice.id}"


def test_the_reference_integration_agrees_with_the_harness_defaults() -> None:
    from examples.reference_integration.conventions import DEFAULT_LINKS
    from examples.reference_integration.conventions import HANDOFFS as OWNED

    assert {k: v for k, v in DEFAULT_LINKS.items()} == {k: s.default for k, s in LINKS.items()}
    assert list(OWNED) == list(HANDOFFS)


def test_a_stand_in_cannot_write_by_a_link_it_does_not_speak(tmp_path: Path) -> None:
    # The integration owns only the subledger; its ERP invoices would be the stand-in's, and
    # the stand-in names documents by external id — a custom field is not something it writes.
    path = _toml(
        tmp_path,
        '[scope]\nowns = ["revrec.contracts"]\n'
        '[links]\n"erp.invoice" = { field = "custbody_src" }\n',
    )
    with pytest.raises(ConfigError, match="played by the stand-in"):
        load_config(path)


def test_a_stand_in_must_find_what_the_integration_wrote(tmp_path: Path) -> None:
    # The stand-in applies payments to ERP invoices the integration posted: a hook cannot be
    # followed back to a document, an external id or custom field can.
    path = _toml(
        tmp_path,
        '[scope]\nowns = ["erp.customers", "erp.invoices"]\n'
        '[links]\n"erp.invoice" = { hook = "x.py:f" }\n',
    )
    with pytest.raises(ConfigError, match="must find"):
        load_config(path)
    _toml(
        tmp_path,
        '[scope]\nowns = ["erp.customers", "erp.invoices"]\n'
        '[links]\n"erp.invoice" = { field = "custbody_src" }\n',
    )
    load_config(path)


def test_the_stand_in_plays_exactly_the_hand_offs_not_owned_with_the_links_in_force() -> None:
    config = HarnessConfig.model_validate(
        {
            "scope": {"owns": ["erp.customers", "erp.invoices"]},
            "links": {"erp.invoice": {"field": "custbody_src"}},
        }
    )
    # Every other hand-off in flow order, except the write-back to billing nobody plays.
    assert missing_handoffs(config) == [
        "crm.provision",
        "crm.amend",
        "crm.writeback",
        "erp.payments",
        "erp.credit_memos",
        "revrec.contracts",
        "revrec.billing",
        "erp.journals",
    ]
    spec = standin_config(config)
    assert spec is not None
    assert spec.env["FINSIM_HANDOFFS"].split(",") == missing_handoffs(config)
    links = effective_links(config)
    assert links["links"]["erp.invoice"] == {"field": "custbody_src"}
    assert links["links"]["erp.payment"] == {"external_id": "pay_{invoice.id}"}
    assert standin_config(HarnessConfig()) is None  # owns everything: no stand-in
    off = config.model_copy(update={"scope": config.scope.model_copy(update={"standin": False})})
    assert standin_config(off) is None


def test_rule_selection_refuses_unknown_rules_with_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        Judge.from_config(HarnessConfig(), only=["INV-6"])
    assert "INV-6" in str(caught.value) and "INV-06" in str(caught.value)
    assert "ORACLE" in str(caught.value)
    config = HarnessConfig.model_validate({"judge": {"skip": {"INV-99": "why"}}})
    with pytest.raises(ConfigError, match="INV-99"):
        Judge.from_config(config)


def test_a_scope_excludes_exactly_the_rules_of_the_hand_offs_not_owned() -> None:
    judge = Judge.from_config(
        HarnessConfig.model_validate({"scope": {"owns": ["erp.customers", "erp.invoices"]}})
    )
    not_judged = {item["rule"] for item in judge.summary()["not_judged"]}
    expected = {
        rule for rule, inv in REGISTRY.items() if inv.handoffs and not inv.judged(judge.scope)
    }
    assert not_judged == expected
    assert "INV-24" in not_judged and "INV-21" in not_judged and "INV-16" in not_judged
    assert "INV-06" not in not_judged and "CONTRACT" not in not_judged


def test_every_report_format_says_what_was_not_judged(tmp_path: Path) -> None:
    config = HarnessConfig.model_validate(
        {"scope": {"owns": ["erp.invoices"]}, "judge": {"skip": {"INV-30": "our SDK retries"}}}
    )
    judge = Judge.from_config(config, skip=["INV-29"])
    result = ScenarioResult("s", "s.yaml", 0, "2026-01-01T00:00:00Z")
    result.judged = judge.summary()
    lines = judged_lines(result)
    assert any("stand-in" in line and "crm.provision" in line for line in lines)
    assert "not judged INV-30: skipped: our SDK retries" in lines
    assert "not judged INV-29: skipped: skipped with --skip" in lines
    assert any(line.startswith("not judged INV-24: judges crm.provision") for line in lines)
    write_json([result], tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["scenarios"][0]["judged"] == result.judged
    write_junit([result], tmp_path / "r.xml")
    props = [p.get("value") for p in ET.parse(tmp_path / "r.xml").iter("property")]
    assert props == lines
    write_html([result], tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "What was judged" in html and "our SDK retries" in html


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--only", "INV-6"], "unknown rule(s) INV-6"),
        (["--skip", "NOPE"], "unknown rule(s) NOPE"),
    ],
)
def test_harness_run_exits_2_on_an_unknown_rule_without_a_traceback(
    args: list[str], says: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "scenarios/01_new_business.yaml", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_harness_run_exits_2_on_a_bad_declaration_without_a_traceback(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[scope]\nowns = ["erp.everything"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--integration", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "scope.owns" in done.stdout + done.stderr and "erp.invoices" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_the_guide_lists_what_every_rule_judges() -> None:
    text = (ROOT / "docs" / "bring-your-own-integration.md").read_text(encoding="utf-8")
    table = text.split("<!-- rules:start -->")[1].split("<!-- rules:end -->")[0]
    rows = {}
    for line in table.strip().splitlines():
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1]
    expected = {rule: ", ".join(inv.handoffs) or "always" for rule, inv in REGISTRY.items()}
    assert rows == expected
