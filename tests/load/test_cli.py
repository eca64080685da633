"""`harness load` as a command, the target file between the harness and Locust, and layering."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.load import register
from harness.load.cli import parse_duration
from harness.load.fixtures import Catalog, write_target
from harness.load.profiles import PROFILES, Calendar
from loadtests.target import Target
from tests.load.helpers import REPO


def test_the_command_registers_its_flags() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "load",
            "--profile",
            "smoke",
            "--users",
            "5",
            "--duration",
            "1m",
            "--workers",
            "2",
            "--stall-timeout",
            "20",
        ]
    )
    assert (args.profile, args.users, args.duration, args.workers) == ("smoke", 5, 60, 2)
    assert args.stall_timeout == 20.0
    words = ["load", "--profile", "smoke"]
    assert build_parser(words).parse_args(words).profile == "smoke"


def test_durations() -> None:
    assert [parse_duration(d) for d in ("90", "90s", "2m", "1h")] == [90, 90, 120, 3600]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration("soon")


def test_an_unknown_profile_is_a_usage_error_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.load", "load", "--profile", "nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown profile 'nope'" in done.stderr and "Traceback" not in done.stderr
    assert "month-end-faults" in done.stderr


def test_every_profile_names_a_locustfile_that_exists() -> None:
    for profile in PROFILES.values():
        assert profile.path.is_file(), profile.path


class _Session:
    """What write_target reads of a session: the rendered context and the served systems."""

    def __init__(self) -> None:
        self.context = {
            "control_token": "tok",
            "ca_bundle": "/ca.pem",
            "billing": {"url": "http://127.0.0.1:1", "api_key": "sk_test_1"},
            "crm": {"url": "https://127.0.0.1:2", "session_id": "sid"},
        }
        self.stack = type("Stack", (), {"sims": {"billing": None, "crm": None}})()


def test_the_target_the_harness_writes_is_the_one_locust_reads(tmp_path: Path) -> None:
    catalog = Catalog("price_1", "prod_1", "price_2", "api_usd", "01u1")
    path = tmp_path / "target.json"
    write_target(
        path, _Session(), catalog, start_at=1_767_225_600, seed=7, calendar=Calendar("P1D", 2.0)
    )
    target = Target.read(path)
    assert target.catalog.price_id == "price_1" and target.catalog.price_minor == 4_900
    assert target.calendar.step == "P1D" and target.calendar.every_s == 2.0
    assert target.urls == {"billing": "http://127.0.0.1:1", "crm": "https://127.0.0.1:2"}
    assert target.headers("crm")["Authorization"] == "Bearer sid"
    assert (target.entity, target.start_at, target.seed) == ("US", 1_767_225_600, 7)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_loadtests_never_import_the_harness() -> None:
    for path in (REPO / "loadtests").rglob("*.py"):
        harness = {n for n in _imports(path) if n == "harness" or n.startswith("harness.")}
        assert not harness, f"{path.relative_to(REPO)} imports {harness}"


def test_nobody_edits_sys_path() -> None:
    for folder in ("harness", "simulators", "loadtests", "examples", "bench", "tests"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and node.attr == "path":
                    value = node.value
                    assert not (isinstance(value, ast.Name) and value.id == "sys"), (
                        f"{path.relative_to(REPO)}:{node.lineno} touches sys.path"
                    )


def test_an_integration_that_does_not_start_is_one_message_not_a_traceback(
    tmp_path: Path,
) -> None:
    toml = tmp_path / "harness.toml"
    toml.write_text(
        '[simulators]\nsystems = ["billing"]\n'
        "[integration]\n"
        f'command = [{sys.executable!r}, "-c", "print(\'no config\'); raise SystemExit(3)"]\n'
        'ready = { log = "listening on", timeout_s = 10 }\n'
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.load",
            "load",
            "--profile",
            "smoke",
            "--integration",
            str(toml),
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "no config" in done.stderr and "Traceback" not in done.stderr + done.stdout
