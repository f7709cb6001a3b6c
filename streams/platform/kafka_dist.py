"""The pinned Apache Kafka distribution: its release (deploy/kafka/pom.xml), its jars resolved with Maven
into the cache (outside the repo), and the Java and Maven it needs.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from streams.kernel.errors import BosaiError
from streams.platform.settings import cache_dir, project_root

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class BrokerError(BosaiError):
    """The embedded broker could not be resolved, started, reached or stopped."""


class MissingToolError(BrokerError):
    """A program the embedded broker needs (java, mvn) is not installed."""


_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_MIN_JAVA = 17


def pom_path() -> Path:
    return project_root() / "deploy" / "kafka" / "pom.xml"


def kafka_version(pom: Path | None = None) -> str:
    """The Kafka release pinned in the POM (``<kafka.version>``)."""
    pom = pom or pom_path()
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise BrokerError(f"{pom}: cannot read the Kafka POM: {exc}") from exc
    node = root.find("m:properties/m:kafka.version", _POM_NS)
    version = (node.text or "").strip() if node is not None else ""
    if not version:
        raise BrokerError(f"{pom}: no <properties><kafka.version> (expected the pinned Kafka release, e.g. 4.4.0)")
    return version


def jar_pins_path() -> Path:
    return project_root() / "deploy" / "kafka" / "jars.sha256"


def read_jar_pins(path: Path | None = None) -> dict[str, str]:
    """jar file name -> sha256 (hex), from ``sha256sum`` lines (``<hex>  <name>``); ``#`` starts a comment."""
    path = path or jar_pins_path()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BrokerError(f"{path}: cannot read the jar pins: {exc.strerror}") from exc
    pins: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([0-9a-f]{64}) [ *]([^/\\]+\.jar)", line.strip())
        if match is None or match.group(2) in pins:
            raise BrokerError(f"{path} line {number}: {line!r} (expected '<sha256 hex>  <name>.jar', once per jar)")
        pins[match.group(2)] = match.group(1)
    if not pins:
        raise BrokerError(f"{path}: no jar pinned")
    return pins


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_jars(libs: Path, pins_path: Path | None = None) -> int:
    """Every jar in ``libs`` is pinned and has its pinned sha256, and every pinned jar is there; else BrokerError
    naming each jar with the expected and the actual hash. Returns the number of jars checked."""
    pins_path = pins_path or jar_pins_path()
    pins = read_jar_pins(pins_path)
    jars = {p.name: p for p in libs.glob("*.jar")}
    problems = [
        f"{name}: not pinned in {pins_path.name} (sha256 {_sha256(jars[name])})"
        for name in sorted(set(jars) - set(pins))
    ]
    problems += [f"{name}: pinned but missing" for name in sorted(set(pins) - set(jars))]
    for name in sorted(set(pins) & set(jars)):
        actual = _sha256(jars[name])
        if actual != pins[name]:
            problems.append(f"{name}: sha256 {actual}, expected {pins[name]}")
    if problems:
        raise BrokerError(
            f"the Kafka jars in {libs} are not the pinned ones ({pins_path}):\n  "
            + "\n  ".join(problems)
            + "\n(delete the folder to resolve them again; if Maven brings the same, the pins or the POM changed)"
        )
    return len(jars)


def require_java() -> str:
    java = shutil.which("java")
    if not java:
        raise MissingToolError(
            f"java not found on PATH: the embedded Kafka needs a Java {_MIN_JAVA}+ runtime "
            f"(Debian: apt-get install openjdk-17-jre-headless), or set KAFKA_BOOTSTRAP_SERVERS"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8" style
            major = int(match.group(2))
        if major < _MIN_JAVA:
            raise MissingToolError(
                f"java {major} found at {java}, but Kafka {kafka_version()} needs Java {_MIN_JAVA}+: "
                f"install openjdk-17-jre-headless (or newer)"
            )
    return java


def require_maven() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise MissingToolError(
            "mvn not found on PATH: the embedded Kafka's jars are resolved with Apache Maven "
            "(Debian: apt-get install maven), or set KAFKA_BOOTSTRAP_SERVERS"
        )
    return mvn


def resolve_jars(progress: Progress = _quiet) -> Path:
    """Resolve the pinned broker's jars with Maven into the cache; skip when already resolved."""
    pom = pom_path()
    version = kafka_version(pom)
    libs = cache_dir() / f"kafka-{version}" / "libs"
    stamp = libs / ".resolved"
    pom_digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == pom_digest:
        verify_jars(libs)  # (0.1 s) a jar changed in the cache since it was resolved is refused too
        return libs
    mvn = require_maven()
    progress(f"resolving Apache Kafka {version} jars with Maven into {libs} (first run downloads ~45 MB) …")
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    started = time.monotonic()
    cmd = [
        mvn,
        "-B",
        "-q",
        "--no-transfer-progress",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(libs, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise BrokerError(f"Maven could not resolve Kafka {version} from {pom}:\n{tail}")
    jars = list(libs.glob("*.jar"))
    if not any(j.name.startswith("kafka_") for j in jars):
        raise BrokerError(f"Maven ran but {libs} holds no kafka_*.jar: check {pom}")
    try:
        verify_jars(libs)
    except BrokerError:
        shutil.rmtree(libs, ignore_errors=True)  # never leave unverified jars where the broker starts from
        raise
    stamp.write_text(pom_digest + "\n")
    progress(f"resolved {len(jars)} jars in {time.monotonic() - started:.1f}s")
    return libs
