"""`harness load`: a bounded Locust run through the integration under test, then judged.

Modules, one job each: `profiles` (the catalogue), `fixtures` (the world and target.json),
`locust` (driving Locust), `taps` (wall-clock moments), `checks` (what the flow owes, what is
there), `verdict` (posted, late, lost or backlog), `traffic` (responses by kind), `report`
(progress and tables), `run` (one run end to end), `cli` (the command line).
"""

from __future__ import annotations

from harness.load.cli import main, register
from harness.load.run import LoadOptions, run_load

__all__ = ["LoadOptions", "main", "register", "run_load"]
