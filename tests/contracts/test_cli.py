"""`harness contracts diff` end to end, in-process: exit codes, formats, --usage and --base."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.contracts.diff_rules import RULES, rules_markdown

CORPUS = Path(__file__).resolve().parent / "corpus"
BREAKING = CORPUS / "response-required-property-removed"
MIXED = CORPUS / "many-changes-mixed"
SAFE = CORPUS / "endpoint-added"
BILLING = Path(__file__).resolve().parents[2] / "contracts" / "openapi" / "billing.yaml"


def diff(*args: str | Path) -> int:
    return main(["contracts", "diff", *map(str, args)])


def test_breaking_exits_1_and_the_text_names_level_rule_operation_location(capsys: Any) -> None:
    assert diff(BREAKING / "old.yaml", BREAKING / "new.yaml") == 1
    out = capsys.readouterr().out
    assert "breaking  response.property.removed  GET /invoices/{id} (retrieveInvoice)" in out
    assert "response 200 property 'amount_due' was removed" in out
    assert "/paths/~1invoices~1{id}/get/responses/200/content/application~1json/schema" in out
    assert out.rstrip().endswith("1 breaking, 0 warning, 0 info")


def test_nothing_breaking_exits_0(capsys: Any) -> None:
    assert diff(SAFE / "old.yaml", SAFE / "new.yaml") == 0
    assert "0 breaking, 0 warning, 1 info" in capsys.readouterr().out
    assert diff(BILLING, BILLING) == 0
    assert "no changes" in capsys.readouterr().out


def test_json_output_lists_every_change_with_its_fields(capsys: Any) -> None:
    assert diff(MIXED / "old.yaml", MIXED / "new.yaml", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["exit_code"] == 1
    assert report["summary"]["breaking"] == 1 and report["summary"]["info"] == 2
    [comparison] = report["comparisons"]
    first = comparison["changes"][0]  # breaking first
    assert first["level"] == "breaking"
    assert first["rule"] == "request.property.removed"
    assert first["operation"] == "POST /invoices (createInvoice)"
    assert first["field"] == "discount_code"
    assert first["location"].endswith("/schema/properties/discount_code")
    assert {c["rule"] for c in comparison["changes"]} == {
        "request.property.removed",
        "request.parameter.optional-added",
        "response.body.media-type-added",
    }


def test_markdown_output_is_a_pull_request_comment(capsys: Any) -> None:
    assert diff(MIXED / "old.yaml", MIXED / "new.yaml", "--format", "markdown") == 1
    out = capsys.readouterr().out
    assert out.startswith("### Contract diff")
    assert "**1 breaking, 0 warning, 2 info**" in out
    assert "| Level | Rule | Operation | Change |" in out
    assert "| ❌ breaking | `request.property.removed` | `POST /invoices (createInvoice)` |" in out
    assert "<details><summary>2 info</summary>" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("swagger: '2.0'\n", "Swagger 2.0 document; only OpenAPI 3.x"),
        ("title: just some yaml\n", "not an OpenAPI 3.x document"),
        ("openapi: [\n", "not valid YAML or JSON"),
    ],
)
def test_unreadable_or_non_openapi_input_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: Any, content: str | None, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    if content is not None:
        bad.write_text(content)
    assert diff(BILLING, bad) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_wrong_argument_combinations_exit_2(capsys: Any) -> None:
    assert diff(BILLING) == 2
    assert "give OLD and NEW" in capsys.readouterr().err
    assert diff(BILLING, BILLING, "--base", "HEAD") == 2
    assert "not both" in capsys.readouterr().err


def write_usage(tmp_path: Path, operations: dict[str, Any]) -> Path:
    path = tmp_path / "usage.json"
    path.write_text(json.dumps({"operations": operations}))
    return path


def test_with_usage_only_breaking_for_us_fails(tmp_path: Path, capsys: Any) -> None:
    old, new = BREAKING / "old.yaml", BREAKING / "new.yaml"
    reads_status = write_usage(tmp_path, {"retrieveInvoice": {"response_fields": ["id", "status"]}})
    assert diff(old, new, "--usage", reads_status) == 0
    out = capsys.readouterr().out
    assert "breaking (in general)  response.property.removed" in out
    assert "1 breaking (0 for us, 1 in general)" in out

    reads_amount = write_usage(tmp_path, {"retrieveInvoice": {"response_fields": ["amount_due"]}})
    assert diff(old, new, "--usage", reads_amount, "--format", "json") == 1
    [change] = json.loads(capsys.readouterr().out)["comparisons"][0]["changes"]
    assert change["impact"] == "breaking-for-us"

    other_operation = write_usage(tmp_path, {"listInvoices": {}})
    assert diff(old, new, "--usage", other_operation) == 0


def test_a_malformed_usage_file_exits_2(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "usage.json"
    bad.write_text('{"operations": {"x": {"request_fields": "a"}}}')
    assert diff(BILLING, BILLING, "--usage", bad) == 2
    assert "must be a list of strings" in capsys.readouterr().err


def test_list_rules_prints_the_registry(capsys: Any) -> None:
    assert diff("--list-rules", "--format", "markdown") == 0
    assert capsys.readouterr().out == rules_markdown()
    assert diff("--list-rules", "--format", "json") == 0
    assert len(json.loads(capsys.readouterr().out)) == len(RULES)


# git inputs ----------------------------------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with two committed contracts, as the current directory."""
    contracts = tmp_path / "contracts" / "openapi"
    contracts.mkdir(parents=True)
    shutil.copy(BREAKING / "old.yaml", contracts / "billing.yaml")
    shutil.copy(SAFE / "old.yaml", contracts / "erp.yaml")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "contracts")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@needs_git
def test_base_with_no_changes_exits_0(repo: Path, capsys: Any) -> None:
    assert diff("--base", "HEAD") == 0
    out = capsys.readouterr().out
    assert "HEAD:contracts/openapi/billing.yaml → contracts/openapi/billing.yaml" in out
    assert "total: no changes" in out


@needs_git
def test_base_compares_every_contract_in_the_working_tree(repo: Path, capsys: Any) -> None:
    contracts = repo / "contracts" / "openapi"
    shutil.copy(BREAKING / "new.yaml", contracts / "billing.yaml")
    shutil.copy(SAFE / "new.yaml", contracts / "erp.yaml")
    assert diff("--base", "HEAD", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    by_file = {c["new"]: {ch["rule"] for ch in c["changes"]} for c in report["comparisons"]}
    assert by_file == {
        "contracts/openapi/billing.yaml": {"response.property.removed"},
        "contracts/openapi/erp.yaml": {"path.added"},
    }


@needs_git
def test_base_reports_a_deleted_contract_as_every_operation_removed(
    repo: Path, capsys: Any
) -> None:
    (repo / "contracts" / "openapi" / "erp.yaml").unlink()
    assert diff("--base", "HEAD", "--format", "markdown") == 1
    out = capsys.readouterr().out
    assert out.startswith("### Contract diff against `HEAD`")
    assert "`path.removed` | `GET /invoices (listInvoices)`" in out


@needs_git
def test_ref_path_inputs_are_read_with_git_show(repo: Path, capsys: Any) -> None:
    shutil.copy(BREAKING / "new.yaml", repo / "contracts" / "openapi" / "billing.yaml")
    assert diff("HEAD:contracts/openapi/billing.yaml", "contracts/openapi/billing.yaml") == 1
    assert "response.property.removed" in capsys.readouterr().out


@needs_git
def test_base_without_any_contract_exits_2(repo: Path, capsys: Any) -> None:
    assert diff("--base", "HEAD", "--contracts", "specs") == 2
    assert "no *.yaml contracts in specs/" in capsys.readouterr().err


@needs_git
def test_an_unknown_ref_exits_2(repo: Path, capsys: Any) -> None:
    assert diff("--base", "no-such-ref") == 2
    assert "--base no-such-ref: not a commit" in capsys.readouterr().err
    assert diff("no-such-ref:contracts/openapi/billing.yaml", "contracts/openapi/billing.yaml") == 2
    assert "no-such-ref:contracts/openapi/billing.yaml" in capsys.readouterr().err
