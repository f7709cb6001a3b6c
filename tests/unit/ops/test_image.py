"""The image definition (deploy/Dockerfile, .dockerignore), checked without a Docker engine: a base pinned by
digest, a non-root user, the hub installed non-editable from the hashed lock, a build context without the
virtualenv, git or caches, a HEALTHCHECK that runs a real command — and the install steps work (a wheel)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from streams.cli import cli


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


@pytest.fixture(scope="module")
def dockerfile(project_root) -> list[tuple[str, str]]:
    return instructions((project_root / "deploy/Dockerfile").read_text())


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last:]


def test_every_base_image_is_pinned_by_digest(dockerfile):
    bases = [args.split()[0] for word, args in dockerfile if word == "FROM"]
    assert len(bases) == 3
    for base in bases:
        assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}", base), base
    python = {b for b in bases if b.startswith("python:")}
    assert len(python) == 1, "the build and run stages use the same python base"


def test_the_image_runs_as_a_non_root_user(dockerfile):
    users = [args for word, args in final_stage(dockerfile) if word == "USER"]
    assert users, "no USER in the final stage: the processes would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert [word for word, _ in final_stage(dockerfile)].index("USER") < [w for w, _ in final_stage(dockerfile)].index(
        "ENTRYPOINT"
    )


def test_the_hub_is_installed_non_editable_from_the_hashed_lock_only(dockerfile, project_root):
    runs = " && ".join(args for word, args in dockerfile if word == "RUN")
    pip_installs = [shlex.split(part) for part in runs.split("&&") if "pip install" in part]
    assert len(pip_installs) == 2
    lock_install, hub_install = pip_installs
    assert "--require-hashes" in lock_install and lock_install[-2:] == ["-r", "requirements/deploy.lock"]
    assert "--no-deps" in hub_install and hub_install[-1] == "."
    assert not {"-e", "--editable"} & set(hub_install + lock_install)
    lock = (project_root / "requirements/deploy.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==\S+ \\$", lock, flags=re.M)
    assert len(pins) > 30 and lock.count("--hash=sha256:") >= len(pins)  # every pin hashed
    copied = [args.split()[-1] for word, args in final_stage(dockerfile) if word == "COPY"]
    assert "./streams" not in copied, "the final image carries the installed package, not the source tree"


def test_the_healthcheck_runs_bosai_probe_which_exists(dockerfile):
    [healthcheck] = [args for word, args in dockerfile if word == "HEALTHCHECK"]
    command = healthcheck.split("CMD", 1)[1].strip()
    assert command == '["bosai", "probe"]'
    assert "probe" in cli.commands
    env = " ".join(args for word, args in final_stage(dockerfile) if word == "ENV")
    assert "BOSAI_METRICS_PORT=9464" in env and "BOSAI_METRICS_HOST=0.0.0.0" in env


def _docker_pattern(pattern: str) -> re.Pattern:
    """A .dockerignore line as a regex (Go filepath.Match with **); it also covers everything under a match."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "(?:/.*)?")


def ignored(path: str, patterns: list[str]) -> bool:
    verdict = False
    for line in patterns:
        negate = line.startswith("!")
        if _docker_pattern(line.lstrip("!").strip("/")).fullmatch(path):
            verdict = not negate
    return verdict


def test_the_build_context_leaves_out_the_virtualenv_git_caches_and_test_outputs(project_root, dockerfile):
    patterns = [
        line.strip()
        for line in (project_root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "streams/__pycache__/cli.cpython-311.pyc",
        "streams/platform/metrics.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/0.17/x",
        ".hypothesis/examples/x",
        "bosai_hub.egg-info/PKG-INFO",
        "tests/unit/ops/test_image.py",
        "benchmarks/x.py",
        "build/lib/streams/x.py",
        "bench.log",
    ):
        assert ignored(path, patterns), path
    for path in ("streams/cli/__init__.py", "README.md", "web/index.html", "data/amedas/x.csv.gz"):
        assert not ignored(path, patterns), path
    sources = [s for word, args in dockerfile if word == "COPY" and "--from" not in args for s in args.split()[:-1]]
    for source in sources:
        assert (project_root / source).exists(), source
        assert not ignored(source, patterns), f"{source} is copied but left out of the build context"


def test_the_non_editable_install_carries_every_module_of_the_hub(project_root, tmp_path):
    """The image's `pip install --no-deps .`: the wheel holds every module of streams/ (the image builds it with
    the lock's setuptools; here pip's build isolation brings one that reads pyproject.toml's license)."""
    source = tmp_path / "src"  # as the image's build stage: only these (and no build/ left in the checkout)
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(project_root / name, source / name)
    shutil.copytree(project_root / "streams", source / "streams", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("bosai_hub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(project_root).as_posix() for p in (project_root / "streams").rglob("*.py")}
    assert modules <= names, sorted(modules - names)[:5]
    assert any(n.endswith("entry_points.txt") for n in names)
    assert not any(Path(n).parts[0] in ("tests", "benchmarks") for n in names)
