"""The code blocks of README.md and docs/*.md, with where they are and how they are tested."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# An HTML comment on the line before a fence opts the block out, visibly: it is reported as a
# skipped test with the reason. <!-- snippet: not run — a fragment of the block above -->
SKIP = re.compile(r"<!--\s*snippet:\s*not run\s*[—-]+\s*(.+?)\s*-->")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
# Untagged blocks and these are output, diagrams or prose: not code, nothing to run.
TEXT = {"", "text", "output"}
KNOWN = {"python", "sh", "bash", "json", "yaml", "yml", "toml", "sql", *TEXT}


@dataclass
class Snippet:
    path: Path
    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets(documents: list[Path] = DOCUMENTS) -> list[Snippet]:
    found = []
    for path in documents:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            skip = SKIP.search(before)
            found.append(
                Snippet(path, line, match.group(1), match.group(2), skip.group(1) if skip else None)
            )
    return found


SEPARATORS = {"&&", "||", ";", "|", "&"}


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a shell block as words: continuation lines joined, comments, leading
    ``VAR=value`` assignments and redirections dropped, ``a && b`` split in two."""
    import shlex

    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        segment: list[str] = []
        redirected = False  # the word after a bare `>` is its target, not an argument
        for word in [*shlex.split(line, comments=True), ";"]:
            if word in SEPARATORS:
                while segment and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", segment[0]):
                    segment = segment[1:]
                if segment:
                    commands.append(segment)
                segment, redirected = [], False
            elif redirected:
                redirected = False
            elif re.fullmatch(r"\d*[<>]+&?", word):
                redirected = True
            elif not re.match(r"\d*[<>]", word):
                segment.append(word)
    return commands
