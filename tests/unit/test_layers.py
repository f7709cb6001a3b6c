"""The tree is the architecture: layers import downwards only, and the core does no I/O (tests/architecture.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.architecture import LAYERS, check_tree


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "streams"
    for name, text in {
        "__init__.py": "",
        **{f"{layer}/__init__.py": "" for layer in LAYERS if layer != "pipeline"},
        **files,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_hub_itself_keeps_its_layers(project_root):
    violations = check_tree(project_root / "streams")

    assert violations == [], "\n".join(map(str, violations))


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"core/a.py": "import yaml\n"}, ("streams.core.a", "I/O library in core", "imports yaml")),
        (
            {"core/a.py": "def f():\n    from aiokafka import AIOKafkaConsumer\n"},
            ("streams.core.a", "I/O library in core", "imports aiokafka"),
        ),
        (
            {"core/a.py": "from streams.config import settings\n", "config/settings.py": ""},
            ("streams.core.a", "upward import", "core imports streams.config"),
        ),
        (
            {"core/a.py": "from ..adapters import kafka\n", "adapters/kafka.py": ""},
            ("streams.core.a", "upward import", "core imports streams.adapters"),
        ),
        (
            {
                "core/a.py": "import importlib\nm = importlib.import_module('streams.runtime.worker')\n",
                "runtime/worker.py": "",
            },
            ("streams.core.a", "upward import", "core imports streams.runtime.worker"),
        ),
        ({"core/a.py": "x = __import__('socket')\n"}, ("streams.core.a", "I/O library in core", "imports socket")),
        ({"core/a.py": "def f(p):\n    return open(p).read()\n"}, ("streams.core.a", "I/O call in core", "open()")),
        (
            {"core/a.py": "def f(p):\n    return p.read_text()\n"},
            ("streams.core.a", "I/O call in core", ".read_text()"),
        ),
        (
            {"core/a.py": "import datetime\nt = datetime.datetime.now()\n"},
            ("streams.core.a", "clock in core", ".now()"),
        ),
        (
            {"config/a.py": "def f():\n    from streams.cli import main\n", "cli/main.py": ""},
            ("streams.config.a", "upward import", "config imports streams.cli"),
        ),
        (
            {"pipeline.py": "from streams import runtime\n", "runtime/w.py": ""},
            ("streams.pipeline", "upward import", "pipeline imports streams.runtime"),
        ),
        (
            {"runtime/w.py": "from streams.cli.main import x\n", "cli/main.py": "x = 1\n"},
            ("streams.runtime.w", "upward import", "runtime imports streams.cli.main"),
        ),
    ],
)
def test_each_kind_of_violation_is_found_in_a_small_tree(tmp_path, files, expected):
    root = _tree(tmp_path, files)

    found = [(v.module, v.kind, v.detail) for v in check_tree(root)]

    assert expected in found
    assert {v[0] for v in found} == {expected[0]}  # nothing else is flagged


def test_downward_imports_and_io_outside_the_core_are_allowed(tmp_path):
    root = _tree(
        tmp_path,
        {
            "core/model.py": "from dataclasses import dataclass\nimport shapely\n",
            "core/rules.py": "from streams.core.model import dataclass\nfrom . import model\n",
            "config/files.py": "import yaml\nfrom streams.core import rules\ndef f(p):\n    return open(p).read()\n",
            "adapters/kafka.py": "import aiokafka, time\nfrom streams.config import files\nt = time.monotonic()\n",
            "pipeline.py": "from streams.adapters import kafka\nfrom streams.core.rules import model\n",
            "runtime/worker.py": "import importlib\nimportlib.import_module('streams.pipeline')\n",
            "cli/main.py": "from streams.runtime import worker\nfrom streams import __init__\n",
        },
    )

    assert check_tree(root) == []
