"""The declared exception list: harness.toml validation, the JSON shape, the report's SLA."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from harness.config import ConfigError, check_templates, load_config
from harness.exceptions import SetAsideLog, parse
from harness.report import write_junit
from harness.results import ScenarioResult

DAY = 86_400


def _write(tmp_path: Path, exceptions: str) -> Path:
    path = tmp_path / "harness.toml"
    path.write_text(
        "[integration]\n"
        'command = ["python", "-m", "x"]\n'
        'ready = { http = "http://127.0.0.1:{port}/health" }\n'
        f"exceptions = {exceptions}\n"
    )
    return path


def test_the_probes_are_declared_and_their_templates_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, '{ list = "http://127.0.0.1:{port}/exc", replay = "{nope}/replay" }')
    config = load_config(path)
    assert config.integration is not None and config.integration.exceptions is not None
    with pytest.raises(ConfigError) as error:
        check_templates(config, {"port": 1}, path)
    assert f"{path}: integration.exceptions.replay:" in str(error.value)


def test_an_unknown_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, '{ list = "http://x/exc", retry = "http://x/r" }')
    with pytest.raises(ConfigError, match=r"harness.toml: integration.exceptions.retry: Extra"):
        load_config(path)


def _item(status: str, **extra: object) -> dict[str, object]:
    return {
        "id": "exc_1",
        "source": {"system": "billing", "document": "in_1"},
        "reason": "invoice in_1 not posted: customer inactive",
        "first_seen": "2026-01-15T00:00:00Z",
        "attempts": 1,
        "status": status,
        **extra,
    }


def test_a_list_off_the_documented_shape_is_named_not_raised() -> None:
    assert parse({"items": [_item("open")]}).error is None
    assert parse({"items": [_item("open", integration_field=1)]}).error is None  # extras allowed
    wrong = parse({"items": [_item("pending")]})
    assert wrong.error is not None and "items.0.status" in wrong.error
    assert parse([]).error is not None


def test_refusal_to_resolution_is_the_sim_time_between_the_snapshots() -> None:
    log = SetAsideLog()
    start = 1_767_225_600  # 2026-01-01
    log.observe(parse({"items": []}), start)
    log.observe(parse({"items": [_item("open")]}), start + 3 * DAY)  # first listed
    log.observe(parse({"items": [_item("open")]}), start + 4 * DAY)
    log.observe(parse({"items": [_item("resolved")]}), start + 5 * DAY)  # first seen resolved
    report = log.as_json((start + 5 * DAY,))
    [row] = report["items"]
    assert row["sat_s"] == 2 * DAY
    assert row["replayed_at"] == ["2026-01-06T00:00:00Z"]
    assert (report["open"], report["max_sat_s"], report["declared"]) == (0, 2 * DAY, True)


def test_an_item_dropped_from_the_list_is_resolved_and_one_never_resolved_stays_open() -> None:
    log = SetAsideLog()
    log.observe(parse({"items": [_item("open"), {**_item("open"), "id": "exc_2"}]}), 100)
    log.observe(parse({"items": [{**_item("open"), "id": "exc_2"}]}), 160)
    report = log.as_json(())
    assert [(r["id"], r["sat_s"]) for r in report["items"]] == [("exc_1", 60), ("exc_2", None)]
    assert report["open"] == 1


def test_the_books_keep_the_list_through_json() -> None:
    from harness.exceptions import Exceptions

    listed = parse({"items": [_item("open")]})
    again = Exceptions.from_json(listed.to_json())
    assert again == listed
    down = Exceptions(error="the integration is not running", down=True)
    assert Exceptions.from_json(down.to_json()) == down


def test_the_junit_report_carries_the_exceptions_section_per_scenario(tmp_path: Path) -> None:
    log = SetAsideLog()
    start = 1_767_225_600  # 2026-01-01
    second = {**_item("open"), "id": "exc_2", "source": {"system": "billing", "document": "in_2"}}
    log.observe(parse({"items": [_item("open")]}), start)
    # exc_1 is replayed (at start + DAY) and seen resolved an hour later; exc_2 is refused
    # after that replay and never resolved.
    log.observe(parse({"items": [_item("resolved"), second]}), start + DAY + 3600)
    judged = ScenarioResult("set aside", "s.yaml", 0, "2026-01-01T00:00:00Z")
    judged.exceptions = log.as_json((start + DAY,))
    bare = ScenarioResult("books alone", "b.yaml", 0, "2026-01-01T00:00:00Z")
    write_junit([judged, bare], tmp_path / "r.xml")
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "r.xml").iter("testcase")}
    props = [(p.get("name"), p.get("value")) for p in cases["set aside"].iter("property")]
    assert dict(props[:6]) == {
        "exceptions.declared": "true",
        "exceptions.count": "2",
        "exceptions.open": "1",
        "exceptions.replayed": "1",
        "exceptions.max_sat_s": str(DAY + 3600),
        "exceptions.read_errors": "0",
    }
    listed = [value for name, value in props[6:] if name == "exception"]
    assert len(listed) == 2 and listed[0].startswith("billing:in_1 resolved after")
    assert "billing:in_2 still open" in listed[1]
    # A scenario without an exceptions section (no probe read) has no properties at all.
    assert list(cases["books alone"].iter("property")) == []
