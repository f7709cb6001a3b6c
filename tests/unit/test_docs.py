"""The docs stay true: README.md and every page under docs/ name only commands, options, paths, modules and
links that exist, the CLI reference names every command, and the README stays a first read.

Commands are read where the docs write them, in code (inline spans and fenced blocks): every ``bosai …`` there
must walk down ``streams.cli.cli``'s groups to a real command, and every ``--option`` after it must be an
option of that command. ``up|down|status`` names alternatives (each must exist); ``[…]`` marks something
optional; a command ends at two spaces, a comment or prose punctuation. The site itself is built with
``mkdocs build --strict`` (``make docs``), which checks the pages' links and anchors too.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from markdown.extensions.toc import slugify

import streams
from streams.cli import cli

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
REFERENCE = DOCS / "reference" / "cli.md"

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
COMMAND_START = re.compile(r"(?<![\w.\-])bosai(?=[ \t]|$)")
COMMAND_END = re.compile(r" {2,}| #|;|&&| \| ")
WORD = re.compile(r"^[A-Za-z0-9<][\w<>|.…\-]*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
TOP_FOLDERS = ("streams", "tests", "benchmarks", "deploy", "regions", "data", "avro", "topics", "web", "cap", "jma")
TOP_FOLDERS += ("fiware", "requirements", "docs", ".ci")
PATH = re.compile(r"^(?:" + "|".join(re.escape(f) for f in TOP_FOLDERS) + r")/[\w./\-]*$")
MODULE = re.compile(r"^streams(?:\.\w+)+$")


@dataclass(frozen=True)
class Page:
    path: Path
    code: tuple[str, ...]  # inline code spans and the lines of fenced blocks (continuations joined)
    prose: tuple[str, ...]  # lines outside fenced blocks, code spans removed
    spans: tuple[str, ...]  # inline code spans alone

    @property
    def name(self) -> str:
        return str(self.path.relative_to(ROOT))


def read_page(path: Path) -> Page:
    code: list[str] = []
    prose: list[str] = []
    spans: list[str] = []
    fenced = False
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            code.append(pending + line.strip())
            pending = ""
            continue
        found = [m.group(2).strip() for m in INLINE_CODE.finditer(line)]
        spans += found
        code += found
        prose.append(INLINE_CODE.sub("", line))
    return Page(path, tuple(code), tuple(prose), tuple(spans))


PAGE_TEXTS = [read_page(p) for p in PAGES]


def _options(command: click.Command) -> dict[str, click.Option]:
    options: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in [*param.opts, *param.secondary_opts]:
                options[name] = param
    return options


def _takes_value(option: click.Option) -> bool:
    return not option.is_flag and not option.count


def walk(words: list[str]) -> tuple[list[str], list[str]]:
    """The command paths a ``bosai …`` mention names (alternatives give several) and what is wrong with it."""
    current: list[tuple[str, click.Command]] = [("bosai", cli)]
    problems: list[str] = []
    i = 0
    while i < len(words):
        word = words[i].strip("[]")
        i += 1
        if not word:
            continue
        if word.startswith("-"):
            name = word.split("=")[0].rstrip(",:.")
            builtin = name in ("--help", "-h") or (name == "--version" and current[0][1] is cli)
            found = [_options(c).get(name) for _, c in current]
            for (path, _), option in zip(current, found, strict=True):
                if option is None and not builtin:
                    problems.append(f"`{path}` has no option {name}")
            takes_value = any(o is not None and _takes_value(o) for o in found)
            if takes_value and "=" not in word and i < len(words) and not words[i].lstrip("[").startswith("-"):
                i += 1  # the option's value
            continue
        word = word.rstrip(":,.;)")
        if not WORD.match(word) or word.isupper():
            break  # prose or punctuation ended the command, or a placeholder (COMMAND) stands for any
        groups = [(p, c) for p, c in current if isinstance(c, click.Group)]
        if not groups:
            continue  # an argument of a command
        following: list[tuple[str, click.Command]] = []
        for path, group in groups:
            for name in word.split("|"):
                sub = group.commands.get(name)
                if sub is None:
                    problems.append(f"`{path}` has no command {name!r}")
                else:
                    following.append((f"{path} {name}", sub))
        if not following:
            break
        current = following
    return [p for p, _ in current], problems


def mentions(page: Page) -> list[tuple[str, list[str], list[str]]]:
    """Every ``bosai …`` in the page's code: (the text, the command paths, the problems)."""
    found = []
    for text in page.code:
        for match in COMMAND_START.finditer(text):
            rest = COMMAND_END.split(text[match.end() :], maxsplit=1)[0]
            paths, problems = walk(rest.split())
            found.append((f"bosai{rest}".strip(), paths, problems))
    return found


def every_command(command: click.Command = cli, path: str = "bosai") -> list[str]:
    paths = [path] if command is not cli else []
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            paths += every_command(sub, f"{path} {name}")
    return paths


@pytest.mark.parametrize("page", PAGE_TEXTS, ids=lambda p: p.name)
def test_every_bosai_command_and_option_named_exists(page: Page):
    problems = [f"{page.name}: `{text}`: {p}" for text, _, found in mentions(page) for p in found]
    assert not problems, "\n".join(problems)


def test_the_docs_name_many_commands():
    """The check above reads the docs as they are written: it finds the commands there (a parser that found
    nothing would pass every page)."""
    named = {path for page in PAGE_TEXTS for _, paths, _ in mentions(page) for path in paths}
    assert len(named) >= 30, sorted(named)
    assert {"bosai demo", "bosai access issue", "bosai bench soak", "bosai bridge orion subscribe"} <= named


def test_the_reference_names_every_command_of_the_cli():
    reference = read_page(REFERENCE)
    named = {path for _, paths, _ in mentions(reference) for path in paths}
    named |= {" ".join(path.split()[:n]) for path in named for n in range(2, len(path.split()))}  # their groups
    missing = [path for path in every_command() if path not in named]
    assert not missing, f"{REFERENCE.relative_to(ROOT)} does not name: {', '.join(missing)}"


def test_a_wrong_command_or_option_is_found():
    assert walk("broker up --brokers 3".split()) == (["bosai broker up"], [])
    assert walk("access issue|revoke WHO --region DIR".split())[1] == []
    assert walk("bench [geofence|gateway|web]".split())[0] == ["bosai bench geofence", "bosai bench gateway"] + [
        "bosai bench web"
    ]
    assert walk("broker upp".split())[1] == ["`bosai broker` has no command 'upp'"]
    assert walk("tail --regio DIR".split())[1] == ["`bosai tail` has no option --regio"]
    assert walk("sink run|redrive --subscription ID".split())[1] == ["`bosai sink run` has no option --subscription"]
    page = Page(Path("x.md"), ("bosai web --port 8080  # --nope is a comment",), (), ())
    assert mentions(page) == [("bosai web --port 8080", ["bosai web"], [])]


def _headings(path: Path) -> set[str]:
    slugs: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            slugs.add(slugify(line.lstrip("#").strip().replace("`", ""), "-"))
    return slugs


def _links(path: Path) -> list[str]:
    return [target for line in read_page(path).prose for target in LINK.findall(line)]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    problems = []
    for target in _links(path):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _headings(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGE_TEXTS, ids=lambda p: p.name)
def test_every_path_and_module_named_exists(page: Page):
    problems = []
    for span in page.spans:
        if PATH.match(span) and not (ROOT / span).exists():
            problems.append(f"{span}: no such file or folder")
        elif MODULE.match(span) and not _importable(span):
            problems.append(f"{span}: no such module or name")
    assert not problems, f"{page.name}:\n" + "\n".join(problems)


def _importable(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_the_architecture_page_describes_every_feature():
    page = (DOCS / "developers" / "architecture.md").read_text(encoding="utf-8")
    missing = [f for f in streams.__features__ if f"`streams/{f}/`" not in page]
    assert not missing, f"docs/developers/architecture.md does not describe {missing}"


def test_the_readme_is_a_first_read():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines (at most 300: the rest belongs under docs/)"
    first_code = text.split("```")[1]
    assert "make demo" in first_code and "make test" in first_code, "the README's two commands come first"
    for credit in ("出典：気象庁", "国土数値情報（行政区域データ）", "Project PLATEAU"):
        assert credit in text, f"README.md lost the credit {credit}"
