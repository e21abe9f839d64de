"""Every command line the documentation shows is one the command line really accepts, and every
link between the documents leads somewhere."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from clambake_tui.cli import build_parser, build_tui_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PLACEHOLDER = re.compile(r"\.\.\.|<[^>]*>|\bN\b|\bKEY\b|\bVALUE\b|\bPATH\b")


def command_lines() -> list[tuple[str, str, bool]]:
    """(document, command, whole) for each `clambake ...` in a shell block (whole command lines)
    or an inline code span (mentions: the command and its flags must exist)."""
    found: list[tuple[str, str, bool]] = []
    for doc in [*DOCS, ROOT / "README.md"]:
        text = doc.read_text(encoding="utf-8")
        for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
            for line in block.splitlines():
                line = line.split(" #", 1)[0].strip()
                if line.startswith(("clambake ", "clambake-tui")):
                    found.append((doc.name, line, True))
        for span in re.findall(r"`(clambake(?:-tui)?(?: [^`]+)?)`", text):
            found.append((doc.name, span, False))
    return [(doc, line, whole) for doc, line, whole in found if not PLACEHOLDER.search(line)]


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of `parser` and of the subcommands below it."""
    found: set[str] = set()
    for action in parser._actions:
        found |= set(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
    return found


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None


@pytest.mark.parametrize(("doc", "line", "whole"), command_lines())
def test_documented_command_lines_parse(doc: str, line: str, whole: bool) -> None:
    argv = shlex.split(line.replace(" / ", " ").replace("[", " ").replace("]", " "))
    parser = build_tui_parser() if argv[0] == "clambake-tui" else build_parser()
    if whole:
        try:
            parser.parse_args(argv[1:])
        except SystemExit as exc:
            pytest.fail(f"{doc}: `{line}` is refused by the command line (exit {exc.code})")
        return
    words = [w for w in argv[1:] if not w.startswith("-")]
    scope = parser
    if argv[0] == "clambake" and words:
        sub = _subcommand(parser, words[0])
        assert sub is not None, f"{doc}: `{line}`: there is no command {words[0]!r}"
        scope = sub
    unknown = [w for w in argv[1:] if w.startswith("-") and w not in _options(scope)]
    assert not unknown, f"{doc}: `{line}`: unknown options {unknown}"


def test_there_are_command_lines_to_check() -> None:
    assert len(command_lines()) > 40


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_lead_to_existing_files(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_the_readme_links_every_document() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in DOCS:
        assert f"(docs/{doc.name})" in readme, f"README does not link docs/{doc.name}"
