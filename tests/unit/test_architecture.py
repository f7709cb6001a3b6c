"""The tree is the architecture: features import only what they declare, layers inside a feature point down,
and pure modules do no I/O (tests/support/architecture.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.architecture import check_tree

FEATURES = ("kernel", "platform", "alerts", "maps", "cli")
ROOT_INIT = f"__features__ = {FEATURES!r}\n"
FEATURE_INITS = {
    "kernel/__init__.py": '__layers__ = {"pure": ["model"]}\n',
    "platform/__init__.py": '__layers__ = {"files": ["settings"], "io": ["kafka"]}\n',
    "alerts/__init__.py": (
        '__requires__ = ("platform",)\n'
        '__layers__ = {"pure": ["rules", "a"], "files": ["rule_file"], '
        '"service": ["pipeline"], "process": ["worker"]}\n'
    ),
    "maps/__init__.py": '__requires__ = ("platform",)\n__layers__ = {"pure": ["view"], "process": ["server"]}\n',
    "cli/__init__.py": "",
}
BASE = {
    "kernel/model.py": "",
    "platform/settings.py": "",
    "platform/kafka.py": "",
    "alerts/rules.py": "",
    "alerts/a.py": "",
    "alerts/rule_file.py": "",
    "alerts/pipeline.py": "",
    "alerts/worker.py": "",
    "maps/view.py": "",
    "maps/server.py": "",
    "cli/main.py": "",
}


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "streams"
    for name, text in {"__init__.py": ROOT_INIT, **FEATURE_INITS, **BASE, **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_hub_itself_keeps_its_architecture(project_root):
    violations = check_tree(project_root / "streams")

    assert violations == [], "\n".join(map(str, violations))


@pytest.mark.parametrize(
    "files, expected",
    [
        # pure modules: no I/O library, no file, no clock
        ({"alerts/a.py": "import yaml\n"}, ("streams.alerts.a", "I/O library in pure module", "imports yaml")),
        (
            {"kernel/model.py": "def f():\n    from aiokafka import AIOKafkaConsumer\n"},
            ("streams.kernel.model", "I/O library in pure module", "imports aiokafka"),
        ),
        (
            {"alerts/a.py": "x = __import__('socket')\n"},
            ("streams.alerts.a", "I/O library in pure module", "imports socket"),
        ),
        (
            {"alerts/a.py": "def f(p):\n    return open(p).read()\n"},
            ("streams.alerts.a", "I/O call in pure module", "open()"),
        ),
        (
            {"alerts/a.py": "def f(p):\n    return p.read_text()\n"},
            ("streams.alerts.a", "I/O call in pure module", ".read_text()"),
        ),
        (
            {"alerts/a.py": "import datetime\nt = datetime.datetime.now()\n"},
            ("streams.alerts.a", "clock in pure module", ".now()"),
        ),
        # a pure module imports only pure modules, even of features it requires
        (
            {"alerts/a.py": "from streams.platform import settings\n"},
            ("streams.alerts.a", "upward import", "pure module imports streams.platform.settings (files)"),
        ),
        # inside a feature, layers point down
        (
            {"alerts/rule_file.py": "from ..alerts import pipeline\n"},
            ("streams.alerts.rule_file", "upward import", "files imports streams.alerts.pipeline (service)"),
        ),
        (
            {"alerts/pipeline.py": "import importlib\nm = importlib.import_module('streams.alerts.worker')\n"},
            ("streams.alerts.pipeline", "upward import", "service imports streams.alerts.worker (process)"),
        ),
        # features import only what they require; nothing imports the cli
        (
            {"maps/server.py": "from streams.alerts.worker import run\n"},
            (
                "streams.maps.server",
                "forbidden feature import",
                "maps imports streams.alerts.worker (alerts is not in its __requires__)",
            ),
        ),
        (
            {"platform/kafka.py": "def f():\n    from streams.alerts import pipeline\n"},
            (
                "streams.platform.kafka",
                "forbidden feature import",
                "platform imports streams.alerts.pipeline (alerts is not in its __requires__)",
            ),
        ),
        (
            {"alerts/worker.py": "from streams.cli.main import x\n", "cli/main.py": "x = 1\n"},
            ("streams.alerts.worker", "upward import", "alerts imports streams.cli.main (nothing imports the cli)"),
        ),
        # every module is declared, every feature in order
        ({"alerts/extra.py": ""}, ("streams.alerts.extra", "undeclared module", "name it in its feature's __layers__")),
        (
            {"loose.py": ""},
            (
                "streams.loose",
                "outside the features",
                "put it in one of " + str(("kernel", "platform", "alerts", "maps", "cli")),
            ),
        ),
        (
            {"platform/__init__.py": '__requires__ = ("alerts",)\n' + FEATURE_INITS["platform/__init__.py"]},
            ("streams.platform", "feature order", "requires ['alerts'], not before it"),
        ),
    ],
)
def test_each_kind_of_violation_is_found_in_a_small_tree(tmp_path, files, expected):
    root = _tree(tmp_path, files)

    found = [(v.module, v.kind, v.detail) for v in check_tree(root)]

    assert expected in found
    assert {v[0] for v in found} == {expected[0]}  # nothing else is flagged


def test_declared_imports_and_io_outside_pure_modules_are_allowed(tmp_path):
    root = _tree(
        tmp_path,
        {
            "kernel/model.py": "from dataclasses import dataclass\nimport shapely\n",
            "alerts/rules.py": "from streams.kernel.model import dataclass\nfrom . import a\n",
            "alerts/rule_file.py": "import yaml\nfrom streams.alerts import rules\nf = open('x')\n",
            "platform/kafka.py": "import aiokafka, time\nfrom streams.platform import settings\nt = time.monotonic()\n",
            "alerts/pipeline.py": "from streams.platform import kafka\nfrom streams.alerts.rules import x\n",
            "alerts/worker.py": "import importlib\nimportlib.import_module('streams.alerts.pipeline')\n",
            "maps/server.py": "from streams.platform import kafka\nfrom streams.maps import view\n",
            "cli/main.py": "from streams.alerts import worker\nfrom streams.maps import server\nimport streams\n",
        },
    )

    assert check_tree(root) == []
