"""The wheel as a team installs it: built from the repository, installed into a fresh venv, and
used from a directory outside the repository (package data found through importlib.resources)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "out", "build", "*.egg-info", "__pycache__", ".*_cache", "tests", "bench"
)

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(300)]


def _run(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the wheel; its dependencies are this venv's (a .pth line),
    so the install needs no network. Returns the venv's bin directory."""
    work = tmp_path_factory.mktemp("wheel")
    # Build from a copy: an in-tree build writes build/ and *.egg-info into the checkout.
    source = work / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=SKIP)
    dist = work / "dist"
    offline = ["--no-deps", "--no-index", "-q"]
    wheel_args = [*offline, "--no-build-isolation", "-w", str(dist), str(source)]
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *wheel_args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("finsim_harness-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Dependencies only: a plain path line, so this venv's editable finder is not activated.
    Path(purelib, "_finsim_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", *offline, str(wheel)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert install.returncode == 0, install.stderr
    return env_dir / "bin"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    return env


def test_installed_harness_runs_a_shipped_scenario_outside_the_repository(
    installed: Path, tmp_path: Path
) -> None:
    env = _clean_env()
    where = _run(
        installed / "python",
        "-c",
        "import harness, simulators, examples; print(harness.__file__, examples.__file__)",
        cwd=tmp_path,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    assert str(ROOT) not in where.stdout and str(installed.parent) in where.stdout

    version = _run(installed / "harness", "--version", cwd=tmp_path, env=env)
    assert version.returncode == 0 and version.stdout.startswith("harness "), version.stderr

    init = _run(installed / "harness", "init", cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "harness.toml").is_file()

    run = _run(
        installed / "harness",
        "run",
        "-k",
        "new business",
        "--quiet",
        "--json",
        "report.json",
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    (scenario,) = report["scenarios"]
    assert scenario["passed"] is True
    # The scenario came out of the installed package, not the repository.
    assert scenario["source"].startswith(str(installed.parent))
