"""Prints the corpus accuracy in pytest's terminal summary (from the corpus test's report)."""

from __future__ import annotations

from typing import Any

ACCURACY_KEY = "contract_diff_corpus_accuracy"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    # The corpus test records its score as a user property; reading it from the reports
    # works in-process and under xdist alike, wherever this hook is loaded.
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == ACCURACY_KEY and getattr(report, "when", "call") == "call":
                    terminalreporter.write_sep("-", str(value))
                    return
