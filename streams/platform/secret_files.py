"""Files that hold secrets: written 0600, and refused on load when others may read or write them.

Every file the hub writes with a secret in it (TLS private keys, the gateway's token store, issued client
configs and tokens) goes through :func:`write_secret`: a temporary file created 0600 in the same folder,
synced, then renamed over the target — never readable by anyone else, not even for a moment, and an
existing file with looser permissions is replaced, not reused. Folders it creates are 0700.

Every secret the hub reads from a file (webhook signing secrets, Orion credentials, the token store, the
CA key) goes through :func:`check_private` first: a file that group or others may read or write is
**refused** with a ``ConfigError`` saying how to fix it, as ssh refuses such a private key. A warning would
scroll past in a log nobody reads during a typhoon while the secret stays open to every local account;
refusing costs one ``chmod 600`` at set-up. (Docker's and Kubernetes' secret mounts are 0444/0644 by
default: give them ``mode: 0400`` / ``defaultMode: 0400``, or pass the secret in an environment variable.)
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

from streams.kernel.errors import ConfigError

PRIVATE_MODE = 0o600
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")


def write_secret(path: Path | str, data: bytes | str) -> Path:
    """Write data to path, mode 0600, atomically (a temporary file in the same folder, renamed over it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, PRIVATE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def open_to_others(path: Path | str) -> int:
    """The permission bits group and others hold on the file (0: private)."""
    return stat.S_IMODE(Path(path).stat().st_mode) & 0o077


def check_private(path: Path | str, what: str, *, where: str | None = None) -> None:
    """Refuse a secret file that group or others may read or write (``ConfigError`` with the fix)."""
    path = Path(path)
    try:
        loose = open_to_others(path)
    except OSError as exc:
        raise ConfigError(path, f"{what}: {exc.strerror}", where=where, expected="a readable file") from None
    if loose:
        mode = stat.S_IMODE(path.stat().st_mode)
        raise ConfigError(
            path,
            f"{what} may be read or written by group or others (mode {mode:04o})",
            where=where,
            expected=f"mode 0600 or 0400, readable by the hub's user only: chmod 600 {path}",
        )


def read_secret(path: Path | str, what: str, *, where: str | None = None) -> str:
    """The secret in a private file, stripped; ``ConfigError`` when it is open to others, unreadable or empty."""
    path = Path(path).expanduser()
    check_private(path, what, where=where)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"{what}: {exc}", where=where, expected="a readable UTF-8 file") from None
    if not value:
        raise ConfigError(path, f"{what} is empty", where=where, expected="the secret in it")
    return value


def shown_env_name(name: str) -> str:
    """An environment variable's name for a message, unless it may be a secret pasted in its place."""
    return name if _ENV_NAME.fullmatch(name) else "(a value that is not an environment variable name; not shown)"
