"""The expiry of the hub's TLS material as a metric: ``bosai_tls_certificate_expiry_timestamp_seconds``.

Every process that serves /metrics exports, per certificate file it uses, the earliest ``notAfter`` of the
certificates in it (a chain expires with its first certificate): the CA and client certificate of its Kafka
connection (``BOSAI_KAFKA_CA_FILE``, ``BOSAI_KAFKA_CERT_FILE``, the ``ca_file``/``cert_file`` of
``BOSAI_KAFKA_CONFIG``), the CA handed to municipalities (``BOSAI_CA_FILE``), the local TLS folder's ``*.pem``
(``bosai tls init``: ca.pem, broker.pem, admin.pem) and any file named in ``BOSAI_TLS_CERT_FILES``
(``:``-separated, e.g. a reverse proxy's certificate). Files are read at scrape time, again only when changed.
The alert ``BosaiCertificateExpiresSoon`` watches it (deploy/prometheus/rules.yml).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric

from streams.platform.settings import ENV_CA_FILE, tls_dir

ENV_EXTRA = "BOSAI_TLS_CERT_FILES"


def certificate_files() -> list[Path]:
    """The certificate files this process uses (those that exist), each once."""
    names: list[str] = [
        os.environ.get(name, "") for name in ("BOSAI_KAFKA_CA_FILE", "BOSAI_KAFKA_CERT_FILE", ENV_CA_FILE)
    ]
    names += os.environ.get(ENV_EXTRA, "").split(":")
    config = os.environ.get("BOSAI_KAFKA_CONFIG", "")
    if config:
        try:
            doc = json.loads(Path(config).read_text(encoding="utf-8"))
            names += [str(doc.get("ca_file") or ""), str(doc.get("cert_file") or "")]
        except (OSError, ValueError, AttributeError):
            pass  # the Kafka client reports an unreadable config; the metric only leaves it out
    try:
        names += [str(p) for p in sorted(tls_dir().glob("*.pem"))]
    except OSError:
        pass
    seen: dict[Path, None] = {}
    for name in names:
        if name and Path(name).is_file():
            seen.setdefault(Path(name).resolve(), None)
    return list(seen)


def earliest_expiry(pem: bytes) -> tuple[float, str] | None:
    """(the earliest notAfter as Unix seconds, that certificate's subject) of a PEM file; None without any."""
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return None
    first = min(certificates, key=lambda c: c.not_valid_after_utc)
    return first.not_valid_after_utc.timestamp(), first.subject.rfc4514_string()


class CertificateExpiry:
    """The collector: one sample per certificate file, re-read only when the file changed."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[float, tuple[float, str] | None]] = {}

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "bosai_tls_certificate_expiry_timestamp_seconds",
            "notAfter of the earliest-expiring certificate in each TLS file the process uses, Unix seconds.",
            labels=["file", "subject"],
        )
        for path in certificate_files():
            try:
                mtime = path.stat().st_mtime
                cached = self._cache.get(path)
                if cached is None or cached[0] != mtime:
                    cached = (mtime, earliest_expiry(path.read_bytes()))
                    self._cache[path] = cached
            except OSError:
                continue
            if cached[1] is not None:
                family.add_metric([str(path), cached[1][1]], cached[1][0])
        return [family]


_registered: list[CertificateExpiry] = []


def register() -> None:
    """Export the metric from this process (once)."""
    if not _registered:
        _registered.append(CertificateExpiry())
        REGISTRY.register(_registered[0])
