"""The architecture of ``streams/``, checked by reading every module's source (no import is executed).

``streams/`` is cut by feature. ``streams/__init__.py`` declares the features in their dependency order
(``__features__``); each feature package's ``__init__.py`` declares the features it may import
(``__requires__``, all declared before it) and the inner layer of each of its modules (``__layers__``:
pure < files < io < service < process). The rules:

* a feature imports only itself and the features it requires (``kernel`` is always allowed); ``cli`` is
  the top and may import every feature; nothing imports ``cli``;
* inside a feature, a module imports its own layer and the layers below it, never one above;
* a **pure** module (the kernel and each feature's pure heart) imports only pure modules, no I/O library,
  opens no file and reads no clock: what it needs is passed in, so replays at any speed give the same results;
* every module is declared in exactly one layer of its feature.

Every kind of import counts: module-level and function-level ``import`` / ``from … import``,
relative imports, and ``importlib.import_module("…")`` / ``__import__("…")`` with a literal name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

INNER_LAYERS = ("pure", "files", "io", "service", "process")
RANK = {name: rank for rank, name in enumerate(INNER_LAYERS)}
TOP = "cli"  # assembly only: may import every feature, imported by none

# Libraries that do I/O (files, network, processes, threads, the terminal) or belong to the shell.
PURE_FORBIDDEN_LIBRARIES = frozenset(
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
    """streams/kernel/geo.py -> streams.kernel.geo; streams/cli/__init__.py -> streams.cli."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _literal(tree: ast.AST, name: str) -> object | None:
    """The literal value assigned to a module-level name (``__features__``, ``__layers__`` …), else None."""
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign) and any(isinstance(x, ast.Name) and x.id == name for x in node.targets):
            return ast.literal_eval(node.value)
    return None


@dataclass(frozen=True)
class Plan:
    """What the package declares: features in order, what each requires, each module's inner layer."""

    features: tuple[str, ...]
    requires: dict[str, frozenset[str]]
    layers: dict[str, str]  # module -> inner layer (every module of every feature but cli)

    def feature_of(self, module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 and parts[1] in self.features else None

    def layer_of(self, module: str) -> str | None:
        if self.feature_of(module) == TOP:
            return "process"
        return self.layers.get(module)


def read_plan(root: Path) -> tuple[Plan, list[Violation]]:
    package = root.name
    problems: list[Violation] = []
    features = tuple(_literal(ast.parse((root / "__init__.py").read_text(encoding="utf-8")), "__features__") or ())
    requires: dict[str, frozenset[str]] = {}
    layers: dict[str, str] = {}
    for rank, feature in enumerate(features):
        init = root / feature / "__init__.py"
        if not init.exists():
            problems.append(Violation(f"{package}.{feature}", 1, "undeclared feature", "no package"))
            continue
        tree = ast.parse(init.read_text(encoding="utf-8"))
        needed = frozenset(_literal(tree, "__requires__") or ()) | ({"kernel"} if feature != "kernel" else set())
        later = sorted(n for n in needed if n not in features[:rank])
        if later and feature != TOP:
            problems.append(Violation(f"{package}.{feature}", 1, "feature order", f"requires {later}, not before it"))
        requires[feature] = frozenset(features) if feature == TOP else needed
        for layer, modules in (_literal(tree, "__layers__") or {}).items():
            if layer not in RANK:
                problems.append(Violation(f"{package}.{feature}", 1, "unknown layer", f"{layer} (not {INNER_LAYERS})"))
            for name in modules:
                layers[f"{package}.{feature}.{name}"] = layer
        layers[f"{package}.{feature}"] = "pure"  # the package's own __init__: declarations only
    return Plan(features, requires, layers), problems


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


def _pure_calls(tree: ast.AST, module: str) -> list[Violation]:
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            out.append(Violation(module, node.lineno, "I/O call in pure module", f"{node.func.id}()"))
        elif isinstance(node.func, ast.Attribute) and node.func.attr in FORBIDDEN_METHODS:
            kind = FORBIDDEN_METHODS[node.func.attr]
            out.append(Violation(module, node.lineno, f"{kind} in pure module", f".{node.func.attr}()"))
    return out


def _import_violation(plan: Plan, module: str, target: str) -> tuple[str, str] | None:
    """(kind, detail) when ``module`` may not import ``target`` (both modules of the package), else None."""
    feature, target_feature = plan.feature_of(module), plan.feature_of(target)
    layer, target_layer = plan.layer_of(module), plan.layer_of(target)
    if feature is None or target_feature is None or layer is None or target_layer is None:
        return None  # the package root, or a module reported as undeclared
    if target_feature == TOP and feature != TOP:
        return "upward import", f"{feature} imports {target} (nothing imports the cli)"
    if target_feature != feature and target_feature not in plan.requires.get(feature, ()):
        return "forbidden feature import", f"{feature} imports {target} ({target_feature} is not in its __requires__)"
    if layer == "pure" and target_layer != "pure":
        return "upward import", f"pure module imports {target} ({target_layer})"
    if target_feature == feature and RANK[target_layer] > RANK[layer]:
        return "upward import", f"{layer} imports {target} ({target_layer})"
    return None


def check_module(path: Path, root: Path, known: set[str], plan: Plan) -> list[Violation]:
    package = root.name
    module = module_name(root, path)
    layer = plan.layer_of(module)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    violations: list[Violation] = []
    for line, target in imported_modules(tree, module, path.name == "__init__.py"):
        top = target.split(".")[0]
        if top == package:
            if target not in known or target == package:
                continue  # a name imported from a module, not a module
            found = _import_violation(plan, module, target)
            if found:
                violations.append(Violation(module, line, *found))
        elif layer == "pure" and top in PURE_FORBIDDEN_LIBRARIES:
            violations.append(Violation(module, line, "I/O library in pure module", f"imports {target}"))
    if layer == "pure":
        violations += _pure_calls(tree, module)
    return violations


def check_tree(root: Path) -> list[Violation]:
    """Every violation of the architecture's rules in the package at root (e.g. the checkout's streams/)."""
    plan, violations = read_plan(root)
    paths = sorted(root.rglob("*.py"))
    known = {module_name(root, p) for p in paths}
    violations += [v for p in paths for v in check_module(p, root, known, plan)]
    for module in known:
        if module == root.name:
            continue
        if plan.feature_of(module) is None:
            violations.append(Violation(module, 1, "outside the features", f"put it in one of {plan.features}"))
        elif plan.layer_of(module) is None:
            violations.append(Violation(module, 1, "undeclared module", "name it in its feature's __layers__"))
    declared = {m for m in plan.layers if m.count(".") == 2}
    violations += [Violation(m, 1, "declared but missing", "no such module") for m in sorted(declared - known)]
    return sorted(violations)
