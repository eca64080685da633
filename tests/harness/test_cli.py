"""The command line as a user meets it: exit codes, messages without tracebacks, config lookup,
lazy imports, completion and Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import psutil
import pytest

from harness import exits
from harness.config import ConfigError, locate_config
from harness.errors import guarded

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "01_new_business.yaml"


def harness(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def user_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Exit 2, every expected fragment in the message, and no traceback."""
    assert result.returncode == exits.USAGE, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in expected:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "harness.toml"
    path.write_text((ROOT / "harness.toml").read_text())
    return path


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# --- start-up --------------------------------------------------------------------------------
def test_help_imports_no_simulator_connexion_or_schemathesis() -> None:
    probe = (
        "import sys\n"
        "from harness.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('simulators', 'connexion', 'schemathesis', 'locust', 'uvicorn', 'starlette'))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert "HEAVY []" in out
    for command in ("run", "load", "contracts", "up", "init", "completion"):
        assert command in out


def test_version_is_the_installed_distributions(tmp_path: Path) -> None:
    result = harness("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"harness {version('finsim-harness')}"


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = harness("rnu", cwd=tmp_path)
    assert result.returncode == exits.USAGE
    assert "invalid choice: 'rnu'" in result.stderr


# --- configuration ---------------------------------------------------------------------------
def test_config_is_found_walking_up_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "harness.toml").write_text("")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert locate_config(None, start=deep) == tmp_path / "harness.toml"
    # An explicit --config wins over the walk, and must exist.
    (deep / "mine.toml").write_text("")
    assert locate_config(deep / "mine.toml", start=deep) == deep / "mine.toml"
    with pytest.raises(ConfigError, match="no such configuration file"):
        locate_config(deep / "missing.toml", start=deep)


def test_no_config_anywhere_says_where_it_looked_and_what_to_do(tmp_path: Path) -> None:
    user_error(harness("run", cwd=tmp_path), f"no harness.toml in {tmp_path}", "harness init")


def test_init_writes_the_reference_config_once(tmp_path: Path) -> None:
    assert harness("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "harness.toml").read_text() == (ROOT / "harness.toml").read_text()
    user_error(harness("init", cwd=tmp_path), "exists already")


def test_a_misspelt_config_key_names_file_and_key(config: Path) -> None:
    config.write_text(config.read_text().replace("stop_timeout_s", "stop_timeout", 1))
    result = harness("run", "--config", config, SCENARIO, cwd=config.parent)
    user_error(result, f"{config}: integration.stop_timeout: Extra inputs are not permitted")


def test_an_unknown_template_name_lists_the_known_ones(config: Path) -> None:
    config.write_text(config.read_text().replace("{billing.api_key}", "{billing.apikey}"))
    result = harness("run", SCENARIO, cwd=config.parent)
    user_error(
        result,
        f"{config}: integration.env.STRIPE_API_KEY: unknown template name {{billing.apikey}}",
        "did you mean {billing.api_key}?",
        "known: {python}, {port},",
    )


def test_a_fixed_port_in_use_names_the_system_and_the_port(config: Path, listening: int) -> None:
    text = config.read_text().replace(
        "# ports = {billing = 12111}", f"ports = {{erp = {listening}}}"
    )
    config.write_text(text)
    result = harness("run", SCENARIO, cwd=config.parent)
    user_error(result, f"erp: port {listening} on 127.0.0.1 is in use", str(config))


def test_harness_up_on_a_port_in_use_names_the_system_and_the_port(
    tmp_path: Path, listening: int
) -> None:
    result = harness("up", "--systems", "revrec", "--port", f"revrec={listening}", cwd=tmp_path)
    user_error(result, f"revrec: port {listening} on 127.0.0.1 is in use")


def test_templates_are_filled_in_the_command(tmp_path: Path) -> None:
    """{python} and {port} in [integration].command: the process listens where it was told."""
    from harness.config import HarnessConfig, IntegrationConfig, Probe, SimulatorsConfig
    from harness.session import open_session

    (tmp_path / "serve.py").write_text(
        "import http.server, sys\n"
        "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])),"
        " http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    config = HarnessConfig(
        simulators=SimulatorsConfig(systems=["billing"], tls=[]),
        integration=IntegrationConfig(
            command=["{python}", "serve.py", "{port}"],
            ready=Probe(http="http://127.0.0.1:{port}/", timeout_s=20),
        ),
    )
    with open_session(config, cwd=tmp_path) as session:
        assert session.integration is not None and session.integration.running
        assert session.integration.config.command == [
            sys.executable,
            "serve.py",
            str(session.context["port"]),
        ]


# --- scenarios -------------------------------------------------------------------------------
def test_a_yaml_syntax_error_names_file_and_line(config: Path) -> None:
    bad = config.parent / "bad.yaml"
    bad.write_text("name: broken\nsteps:\n  - clock.advance: [P1D\n")
    user_error(harness("run", bad, cwd=config.parent), f"{bad}:4: not valid YAML")


def test_scenario_validation_errors_exit_2_with_file_and_line(config: Path) -> None:
    bad = config.parent / "bad.yaml"
    bad.write_text(SCENARIO.read_text().replace("clock.advance", "clock.advence", 1))
    line = next(
        n for n, text in enumerate(bad.read_text().splitlines(), 1) if "clock.advence" in text
    )
    user_error(harness("run", bad, cwd=config.parent), f"{bad}:{line}:", "clock.advence")


def test_a_missing_scenario_path_is_a_usage_error(config: Path) -> None:
    user_error(harness("run", "nowhere.yaml", cwd=config.parent), "nowhere.yaml")


def test_a_failed_verdict_exits_1(config: Path) -> None:
    wrong = config.parent / "wrong.yaml"
    # The first invoice is 3 seats × 100.00 = 30000 minor units; expect one less.
    wrong.write_text(SCENARIO.read_text().replace("30000", "29999", 1))
    result = harness("run", wrong, "--quiet", "--json", "r.json", cwd=config.parent)
    assert result.returncode == exits.FAILED, result.stdout + result.stderr
    report = json.loads((config.parent / "r.json").read_text())
    assert report["passed"] is False
    assert "EXPECT" in result.stdout


# --- ends ------------------------------------------------------------------------------------
def test_a_harness_bug_exits_3_with_the_traceback_in_a_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken() -> int:
        return {}["missing"]  # type: ignore[no-any-return]

    assert guarded(broken) == exits.INTERNAL
    err = capsys.readouterr().err
    assert "internal error" in err and "KeyError: 'missing'" in err
    saved = Path(err.split("traceback saved to ")[1].strip())
    assert 'return {}["missing"]' in saved.read_text()
    saved.unlink()


def test_a_message_in_system_exit_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    def exits_with_message() -> int:
        raise SystemExit("unknown system(s): bilING")

    assert guarded(exits_with_message) == exits.USAGE
    assert capsys.readouterr().err == "harness: unknown system(s): bilING\n"


def test_ctrl_c_stops_every_child_and_writes_the_report_of_what_ran(config: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", SCENARIO, SCENARIO, "--json", "r.json"],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        # pytest-xdist workers ignore SIGINT, and an ignored signal stays ignored across exec.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # wait until the integration is up and a step has played
        lines.append(line)
        if "crm.create_account" in line:
            break
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "the integration runs as a child"
    proc.send_signal(signal.SIGINT)
    out = "".join(lines) + proc.communicate(timeout=60)[0]
    assert proc.returncode == exits.INTERRUPTED, out
    assert "Traceback" not in out
    deadline = time.monotonic() + 10
    while any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children):
        assert time.monotonic() < deadline, "a child outlived the harness"
        time.sleep(0.1)
    report = json.loads((config.parent / "r.json").read_text())
    (interrupted,) = report["scenarios"]
    # The signal lands after the first step at the earliest; a quick second step may be
    # done by then too. Either way the report says how far it got, short of the end.
    said = re.fullmatch(r"interrupted \(Ctrl-C\) after (\d+) of (\d+) steps", interrupted["error"])
    assert said is not None, interrupted["error"]
    assert 1 <= int(said[1]) < int(said[2])
    assert interrupted["steps"][0]["kind"] == "crm.create_account"


# --- completion ------------------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_prints_a_script_for_the_shell(shell: str, tmp_path: Path) -> None:
    result = harness("completion", shell, cwd=tmp_path)
    assert result.returncode == 0
    assert "harness" in result.stdout and "_ARGCOMPLETE" in result.stdout


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("harness ru", {"run"}),
        ("harness run --j", {"--json", "--junit"}),
        ("harness contracts d", {"diff"}),
    ],
)
def test_completion_answers_the_shell(line: str, expected: set[str], tmp_path: Path) -> None:
    answer = tmp_path / "answer"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "_ARGCOMPLETE": "1",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
    }
    subprocess.run(
        [sys.executable, "-m", "harness.cli"], cwd=tmp_path, env=env, check=True, timeout=60
    )
    assert {word.strip() for word in answer.read_text().split("\v")} - {""} == expected


def test_the_config_default_start_is_the_worlds() -> None:
    """config.py keeps its own copy so reading harness.toml imports no simulator."""
    from harness.config import DEFAULT_START
    from simulators.common.world import DEFAULT_START as WORLD_START

    assert DEFAULT_START == WORLD_START
