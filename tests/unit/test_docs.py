"""The pages hold to what they say: every shell command in README.md and docs/ is one that a test
or CI runs, or its block starts with `# example: WHAT IT NEEDS`; every relative link points at
a file (and heading) that exists; the specs and timelines shown parse. No root needed: the
commands run here are the cheap ones (`--help`), the rest must appear as they are in the
Makefile, .ci/run or the tests, which run them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.model.spec import loads_spec
from engine.timelines.parsing import parse_timeline

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
#: The front door stays a front door.
README_MAX_LINES = 400
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
#: How an example block says so, and what it needs, on its first line.
EXAMPLE = re.compile(r"^#\s*example:\s*\S")
#: Where the commands that tests and CI run are written out.
RUN_BY = [ROOT / "Makefile", ROOT / ".ci" / "run", *sorted((ROOT / "tests").rglob("*.py"))]
#: Fast to run here, as a user would: a program's `--help` (a subcommand's included).
CHEAP = re.compile(r"^(?P<program>[\w-]+)(?: [\w-]+)* --help$")
#: How long one such command may take: far above what it needs.
PATIENCE = 30.0


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    lines: list[str]

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, with the line each starts on."""
    blocks: list[Block] = []
    opened: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if line.startswith("```"):
            if opened is None:
                opened = (number, line[3:].split(" ")[0].strip())
                body = []
            else:
                blocks.append(Block(page, opened[0], opened[1], body))
                opened = None
        elif opened is not None:
            body.append(line)
    assert opened is None, f"{page}: a code block opened on line {opened[0]} is never closed"
    return blocks


def _prose(page: Path) -> str:
    """A page without its code: fenced blocks and inline code spans."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def _commands(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and a trailing `&`
    taken off."""
    joined: list[str] = []
    pending = ""
    for line in block.lines:
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    commands = []
    for line in joined:
        command = re.sub(r"(^|\s)#(\s.*|)$", "", line).strip().removesuffix("&").strip()
        if command:
            commands.append(" ".join(command.split()))
    return commands


def _shell_blocks() -> list[Block]:
    return [b for page in PAGES for b in _blocks(page) if b.language in SHELL_LANGUAGES]


def _is_example(block: Block) -> bool:
    first = next((line for line in block.lines if line.strip()), "")
    return bool(EXAMPLE.match(first.strip()))


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([\w-]+):", text, flags=re.M))


def _written_out() -> str:
    return "\n".join(" ".join(p.read_text().split()) for p in RUN_BY if p != Path(__file__))


def _programs() -> dict[str, list[str]]:
    """The project's commands, run with this interpreter as installed ones would be."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    programs = {}
    for name, target in scripts.items():
        module, function = target.split(":")
        code = (
            f"import sys; sys.argv[0] = {name!r}; "
            f"from {module} import {function}; sys.exit({function}())"
        )
        programs[name] = [sys.executable, "-c", code]
    return programs


RUN_BLOCKS = [b for b in _shell_blocks() if not _is_example(b)]
RUN_COMMANDS = [(block, command) for block in RUN_BLOCKS for command in _commands(block)]
CHEAP_COMMANDS = sorted({c for _, c in RUN_COMMANDS if CHEAP.match(c)})


def test_the_readme_is_a_front_door_that_starts_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    first = _blocks(README)[0]
    assert _commands(first) == ["make demo", "make test"], first.where()
    assert first.line <= 3, "README.md starts with the two commands"


def test_every_shell_block_is_run_or_marked_as_an_example() -> None:
    """A block a reader copies either works as it is (a test or CI runs each of its commands)
    or says it is an example and what it needs."""
    assert RUN_COMMANDS, "some commands in the pages are run"
    not_run = []
    targets = _make_targets()
    written = _written_out()
    for block, command in RUN_COMMANDS:
        if CHEAP.match(command):
            continue  # run below
        words = command.split()
        if words[0] == "make":
            if all(target in targets for target in words[1:]):
                continue
        elif command in written:
            continue
        not_run.append(f"{block.where()}: {command}")
    assert not not_run, (
        "commands neither run by a test or CI nor in a block starting `# example: ...`:\n"
        + "\n".join(not_run)
    )


@pytest.mark.parametrize("command", CHEAP_COMMANDS)
def test_the_help_commands_shown_work(command: str) -> None:
    program, *arguments = command.split()
    programs = _programs()
    assert program in programs, f"{command}: {program} is none of the project's commands"
    done = subprocess.run(
        [*programs[program], *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=PATIENCE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {program}"), done.stdout[:200]


def _slug(heading: str) -> str:
    """A heading's anchor, as GitHub and mkdocs' toc both make it for the headings here."""
    heading = re.sub(r"`([^`]*)`", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_every_relative_link_points_at_a_file_and_heading_that_exist() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(_prose(page)):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target}: no such heading")
    assert not broken, "\n".join(broken)


def test_every_page_of_docs_is_in_the_sites_navigation() -> None:
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M))
    pages = {p.name for p in PAGES if p.parent == ROOT / "docs"}
    assert pages == nav


def test_the_specs_and_timelines_shown_parse() -> None:
    """A JSON block that is a spec is one the engine takes; a block of timeline lines is one
    `linkshaper replay` takes. Schematic blocks (with `LINK` for a link) are not JSON."""
    checked = 0
    for page in PAGES:
        for block in _blocks(page):
            text = "\n".join(block.lines)
            if block.language == "json":
                try:
                    data = json.loads(text)
                except json.JSONDecodeError:
                    continue
                loads_spec(json.dumps(data))
                checked += 1
            elif block.language == "text" and re.search(r'^\{"at":', text, flags=re.M):
                parse_timeline(block.lines, name=block.where())
                checked += 1
    assert checked >= 2
