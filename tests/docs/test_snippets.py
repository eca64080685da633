"""Every code block of README.md and docs/*.md is run or checked, so the docs cannot rot.

- ``python``: the blocks of one document run in order as one program (a later block may use
  what an earlier one made), in a fresh process from a scratch directory; a block that defines
  ``test_*`` functions is run by pytest instead, from the repository root.
- ``sh``/``bash``: every ``harness …`` command is parsed by the real command line (so each
  subcommand, flag and choice exists; running them all would take an hour), every
  ``make TARGET`` names a target of the Makefile. Other programs (pip, git, curl) are not ours.
- ``json``, ``yaml``, ``toml``: parsed; a scenario is loaded and checked whole, a harness.toml
  validated; ``, …`` and ``[ … ]`` elide. A ``json`` block that starts ``POST /path`` is a
  request: the operation must be in a contract and the body must parse.
  ``sql``: run as SuiteQL against the ERP simulator.
- Untagged blocks are output or diagrams. ``<!-- snippet: not run — why -->`` on the line before
  a fence skips a block, visibly (a skipped test naming the reason).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.docs.snippets import DOCUMENTS, KNOWN, ROOT, TEXT, Snippet, shell_commands, snippets

ALL = snippets()
CODE = [s for s in ALL if s.lang not in TEXT]
TESTS = [s for s in CODE if s.lang == "python" and re.search(r"^def test_", s.code, re.M)]
PROGRAMS = {
    path: [s for s in CODE if s.path == path and s.lang == "python" and s not in TESTS]
    for path in DOCUMENTS
}
DRIVER = """
import json, sys, traceback
namespace = {"__name__": "__main__"}
for where, code in json.load(sys.stdin):
    try:
        exec(compile(code, where, "exec"), namespace)
    except BaseException:
        print(f"the snippet at {where} failed:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""


def _ids(items: list[Snippet]) -> list[str]:
    return [s.where for s in items]


def _skip_marked(snippet: Snippet) -> None:
    if snippet.skip:
        pytest.skip(f"{snippet.where}: {snippet.skip}")


def test_every_block_has_a_language_we_know() -> None:
    unknown = [f"{s.where}: ```{s.lang}" for s in ALL if s.lang not in KNOWN]
    assert not unknown, "tag each block with a language this test runs, or leave it untagged"


@pytest.mark.parametrize(
    "path", [p for p, blocks in PROGRAMS.items() if blocks], ids=lambda p: p.name
)
def test_python_blocks_run(path: Path, tmp_path: Path) -> None:
    blocks = [(s.where, s.code) for s in PROGRAMS[path] if not s.skip]
    if not blocks:
        pytest.skip("every python block of this document is marked not run")
    result = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(blocks),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.mark.parametrize("snippet", TESTS, ids=_ids(TESTS))
def test_python_test_blocks_pass_under_pytest(snippet: Snippet, tmp_path: Path) -> None:
    _skip_marked(snippet)
    test_file = tmp_path / "test_snippet.py"
    test_file.write_text(snippet.code)
    pytest_args = ["-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), "-W", "ignore"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *pytest_args,
            "-o",
            "addopts=-p no:locust",
            str(test_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]


SHELL = [s for s in CODE if s.lang in ("sh", "bash")]


@pytest.mark.parametrize("snippet", SHELL, ids=_ids(SHELL))
def test_shell_blocks_name_real_commands(snippet: Snippet) -> None:
    from harness.cli import build_parser

    _skip_marked(snippet)
    targets = set(re.findall(r"^([a-z][\w.-]*):", (ROOT / "Makefile").read_text(), re.M))
    problems = []
    for words in shell_commands(snippet.code):
        program = Path(words[0]).name
        if program == "harness":
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    build_parser(words[1:]).parse_args(words[1:])
            except SystemExit as exc:
                if exc.code:
                    problems.append(f"{' '.join(words)}: {err.getvalue().strip()}")
        elif program == "make":
            problems += [f"make {t}: no such target" for t in words[1:] if t not in targets]
    assert not problems, "\n".join(problems)


DATA = [s for s in CODE if s.lang in ("json", "yaml", "yml", "toml")]
REQUEST = re.compile(r"(GET|POST|PUT|PATCH|DELETE) (/\S*)\n")


def _unelide(text: str) -> str:
    """JSON with its elisions taken out: ``, …`` and ``[ … ]`` (``"…"`` is a string already)."""
    return re.sub(r"\[\s*…\s*\]", "[]", re.sub(r",\s*…(?=\s*[\]}])", "", text))


def _in_a_contract(method: str, path: str) -> bool:
    """Whether some contract has the operation; ``…`` in the path stands for an id."""
    path = path.split("?")[0]
    for contract in (ROOT / "contracts" / "openapi").glob("*.yaml"):
        spec = yaml.safe_load(contract.read_text())
        for template, operations in spec.get("paths", {}).items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path) and method.lower() in operations:
                return True
    return False


@pytest.mark.parametrize("snippet", DATA, ids=_ids(DATA))
def test_data_blocks_parse_and_validate(snippet: Snippet, tmp_path: Path) -> None:
    _skip_marked(snippet)
    request = REQUEST.match(snippet.code)
    if request:
        method, path = request.groups()
        assert _in_a_contract(method, path), f"{method} {path} is in no contract"
        json.loads(_unelide(snippet.code[request.end() :]))
    elif snippet.lang == "json":
        json.loads(_unelide(snippet.code))
    elif snippet.lang == "toml":
        from harness.config import HarnessConfig

        data = tomllib.loads(snippet.code)
        if {"simulators", "integration", "accounts"} & set(data):
            HarnessConfig.model_validate(data)
    else:
        data = yaml.safe_load(snippet.code)
        if isinstance(data, dict) and "steps" in data:
            from harness.scenario import load_scenario

            scenario = tmp_path / "scenario.yaml"
            scenario.write_text(snippet.code)
            load_scenario(scenario)


SQL = [s for s in CODE if s.lang == "sql"]


@pytest.fixture(scope="module")
def erp() -> Iterator[object]:
    import finsim

    with finsim.serve("erp") as sims:
        yield sims.erp


@pytest.mark.parametrize("snippet", SQL, ids=_ids(SQL))
def test_sql_blocks_run_as_suiteql(snippet: Snippet, erp: object) -> None:
    import httpx

    _skip_marked(snippet)
    answer = httpx.post(
        f"{erp.url}/services/rest/query/v1/suiteql",  # type: ignore[attr-defined]
        json={"q": snippet.code},
        headers={"Authorization": f"Bearer {erp.token}", "Prefer": "transient"},  # type: ignore[attr-defined]
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


CI_EXAMPLES = sorted((ROOT / "examples" / "ci").glob("*.yml"))


@pytest.mark.parametrize("path", CI_EXAMPLES, ids=lambda p: p.name)
def test_ci_examples_run_real_harness_commands(path: Path) -> None:
    from harness.cli import build_parser

    def scripts(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("run", "script") and isinstance(value, str):
                    yield value
                elif key == "script" and isinstance(value, list):
                    yield from (str(v) for v in value)
                else:
                    yield from scripts(value)
        elif isinstance(node, list):
            for item in node:
                yield from scripts(item)

    commands = [c for s in scripts(yaml.safe_load(path.read_text())) for c in shell_commands(s)]
    harness = [words for words in commands if words[0] == "harness"]
    assert harness, f"{path.name} runs no harness command"
    for words in harness:
        args = build_parser(words[1:]).parse_args(words[1:])
        assert args.command == "run"
