"""Progress and console output off a terminal: one plain line per event, tables unwrapped."""

from __future__ import annotations

import io

from rich.table import Table

from harness.cli import main
from harness.progress import Events, make_console


def test_off_a_terminal_each_event_is_one_plain_line() -> None:
    out = io.StringIO()
    console = make_console(out)
    with Events(console) as events:
        events.task("steps", "a scenario", 2)
        events.advance("steps", "  ✓ 1 crm.create_account")
        events.advance("steps", "  ✓ 2 clock.advance")
    assert out.getvalue() == "  ✓ 1 crm.create_account\n  ✓ 2 clock.advance\n"


def test_quiet_keeps_only_the_important_lines() -> None:
    out = io.StringIO()
    with Events(make_console(out), quiet=True) as events:
        events.print("step line")
        events.print("verdict line", important=True)
    assert out.getvalue() == "verdict line\n"


def test_tables_off_a_terminal_are_as_wide_as_their_content() -> None:
    out = io.StringIO()
    name = "a scenario name far longer than eighty columns, " * 3
    table = Table("scenario", "verdict")
    table.add_row(name.strip(), "pass")
    make_console(out).print(table)
    rows = [line for line in out.getvalue().splitlines() if "scenario name" in line]
    assert len(rows) == 1 and name.strip() in rows[0]
    # The border is exactly as wide as the row: no padding out to a fixed width.
    assert len(out.getvalue().splitlines()[0]) == len(rows[0])


def test_contracts_test_reports_each_phase_as_it_ends(capsys: object) -> None:
    code = main(["contracts", "test", "--system", "revrec", "--max-examples", "1"])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert code == 0, out
    phases = [line for line in out.splitlines() if line.startswith("revrec · ")]
    assert [line.split(":")[0] for line in phases][:2] == ["revrec · examples", "revrec · coverage"]
    assert all("requests and" in line for line in phases)
