"""The layer rules of ``streams/``, checked by reading every module's source (no import is executed).

Layers, lowest first: core < config < adapters < pipeline < runtime < cli. A module may import its own
layer and the layers below it, never one above. The core (domain values, geofencing, rules, the alert
lifecycle, rendering) additionally imports no I/O library, opens no file and reads no clock: what it
needs is passed in, so replays at any speed give the same results.

Every kind of import counts: module-level and function-level ``import`` / ``from … import``,
relative imports, and ``importlib.import_module("…")`` / ``__import__("…")`` with a literal name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

LAYERS = ("core", "config", "adapters", "pipeline", "runtime", "cli")
RANK = {name: rank for rank, name in enumerate(LAYERS)}

# Libraries that do I/O (files, network, processes, threads, the terminal) or belong to the shell.
CORE_FORBIDDEN_LIBRARIES = frozenset(
    {
        "aiohttp",
        "aiokafka",
        "asyncio",
        "click",
        "confluent_kafka",
        "faust",
        "fastavro",
        "glob",
        "gzip",
        "http",
        "httpx",
        "io",
        "kafka",
        "logging",
        "mode",
        "multiprocessing",
        "os",
        "pathlib",
        "prometheus_client",
        "requests",
        "shutil",
        "signal",
        "socket",
        "sqlite3",
        "ssl",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
        "urllib",
        "xmlschema",
        "yaml",
    }
)
# Calls that open files or read the clock.
FORBIDDEN_CALLS = frozenset({"open", "input", "print"})
FORBIDDEN_METHODS = {
    "read_text": "I/O call",
    "write_text": "I/O call",
    "read_bytes": "I/O call",
    "write_bytes": "I/O call",
    "now": "clock",
    "utcnow": "clock",
    "today": "clock",
    "monotonic": "clock",
    "perf_counter": "clock",
    "time_ns": "clock",
    "sleep": "clock",
}


@dataclass(frozen=True, order=True)
class Violation:
    module: str
    line: int
    kind: str  # upward import | I/O library in core | I/O call in core | clock in core
    detail: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.kind}: {self.detail}"


def module_name(root: Path, path: Path) -> str:
    """streams/core/geo.py -> streams.core.geo; streams/cli/__init__.py -> streams.cli."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str, package: str) -> str | None:
    """The layer of a module of the package; None for the package root (shared by every layer)."""
    parts = module.split(".")
    if parts[0] != package or len(parts) == 1:
        return None
    return parts[1] if parts[1] in RANK else None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) of every import in the source, wherever it stands."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            found.append((node.lineno, target))
            # `from streams import cli` imports the module streams.cli
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def _core_calls(tree: ast.AST, module: str) -> list[Violation]:
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            out.append(Violation(module, node.lineno, "I/O call in core", f"{node.func.id}()"))
        elif isinstance(node.func, ast.Attribute) and node.func.attr in FORBIDDEN_METHODS:
            kind = FORBIDDEN_METHODS[node.func.attr]
            out.append(Violation(module, node.lineno, f"{kind} in core", f".{node.func.attr}()"))
    return out


def check_module(path: Path, root: Path, known: set[str]) -> list[Violation]:
    package = root.name
    module = module_name(root, path)
    layer = layer_of(module, package)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    violations: list[Violation] = []
    for line, target in imported_modules(tree, module, path.name == "__init__.py"):
        top = target.split(".")[0]
        if top == package:
            if target not in known:
                continue  # a name imported from a module, not a module
            target_layer = layer_of(target, package)
            if layer and target_layer and RANK[target_layer] > RANK[layer]:
                violations.append(Violation(module, line, "upward import", f"{layer} imports {target}"))
        elif layer == "core" and top in CORE_FORBIDDEN_LIBRARIES:
            violations.append(Violation(module, line, "I/O library in core", f"imports {target}"))
    if layer == "core":
        violations += _core_calls(tree, module)
    return violations


def check_tree(root: Path) -> list[Violation]:
    """Every violation of the layer rules in the package at root (e.g. the checkout's streams/)."""
    paths = sorted(root.rglob("*.py"))
    known = {module_name(root, p) for p in paths}
    violations = [v for p in paths for v in check_module(p, root, known)]
    for module in known:
        if module != root.name and layer_of(module, root.name) is None:
            violations.append(Violation(module, 1, "outside the layers", f"put it in one of {', '.join(LAYERS)}"))
    return sorted(violations)
