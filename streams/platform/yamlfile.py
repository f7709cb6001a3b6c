"""Reading the hub's YAML files (catalog, rules, access, subscriptions) with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from streams.kernel.errors import ConfigError


def read_yaml(path: Path, what: str, *, hint: str = "") -> Any:
    """The parsed document; a missing/unreadable file or bad YAML is a ConfigError saying which file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, f"cannot read the {what}: {exc.strerror}{hint}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"not valid YAML: {exc}") from exc
