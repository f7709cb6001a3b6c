"""The one endpoint of every long-running process: /metrics, /healthz (liveness), /readyz (readiness), and
`bosai probe`, which the image's HEALTHCHECK and the compose healthchecks run."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from streams.platform import cert_expiry, health


@pytest.fixture
def endpoint():
    health.READINESS.clear()
    health.LIVENESS.last_beat = None
    port = health.serve(0)
    yield f"http://127.0.0.1:{port}", port
    health.READINESS.clear()
    health.LIVENESS.last_beat = None


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_readiness_is_503_until_every_declared_check_holds_and_says_which_does_not(endpoint):
    url, _ = endpoint
    health.READINESS.waiting("kafka", "connecting to kafka-1:9092")
    health.READINESS.waiting("assignment", "joining group bosai-tochigi-hub")
    status, body = _get(url + "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["kafka"] == {"ok": False, "detail": "connecting to kafka-1:9092"}

    health.READINESS.ok("kafka")
    assert _get(url + "/readyz")[0] == 503
    health.READINESS.ok("assignment", "6 partition(s)")
    status, body = _get(url + "/readyz")
    assert (status, json.loads(body)["status"]) == (200, "ready")

    health.READINESS.failed("assignment", "restarting after: broker gone")
    assert _get(url + "/readyz")[0] == 503


def test_liveness_follows_the_heartbeat_and_metrics_are_served_beside_it(endpoint):
    url, _ = endpoint
    assert _get(url + "/healthz")[0] == 200  # starting: no beat yet
    clock = [1000.0]
    saved = health.LIVENESS.clock
    health.LIVENESS.clock = lambda: clock[0]
    try:
        health.LIVENESS.beat()
        clock[0] += 5
        status, body = _get(url + "/healthz")
        assert (status, json.loads(body)["heartbeat_age_s"]) == (200, 5.0)
        clock[0] += health.STALE_AFTER_S  # the loop stopped turning
        assert _get(url + "/healthz")[0] == 503
        assert _get(url + "/readyz")[0] == 503  # a stalled process is not ready either
        health.READINESS.waiting("kafka", "connecting")
        status, metrics = _get(url + "/metrics")
        assert status == 200
        assert 'bosai_ready{check="kafka"} 0.0' in metrics
        assert "bosai_heartbeat_age_seconds 35.0" in metrics
    finally:
        health.LIVENESS.clock = saved
    assert _get(url + "/nothing")[0] == 404


async def test_heartbeat_beats_on_the_running_loop():
    import asyncio

    liveness = health.Liveness()
    task = asyncio.create_task(health.heartbeat(every_s=0.01, liveness=liveness))
    await asyncio.sleep(0.05)
    task.cancel()
    assert liveness.age() is not None and liveness.age() < 1


def test_bosai_probe_exits_0_when_healthy_and_1_naming_the_failing_check(endpoint):
    url, port = endpoint
    probe = [sys.executable, "-m", "streams.cli.__main__", "probe", "--port", str(port)]
    ok = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    health.READINESS.waiting("alerts_loaded", "reading bosai.tochigi.alerts")
    not_ready = subprocess.run([*probe, "--ready"], capture_output=True, text=True, timeout=60)
    assert not_ready.returncode == 1
    assert "reading bosai.tochigi.alerts" in not_ready.stderr
    closed = subprocess.run([*probe[:-1], "1"], capture_output=True, text=True, timeout=60)
    assert closed.returncode == 1 and "no answer" in closed.stderr


def _certificate(days: int) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"in {days} days")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM)


def test_certificate_expiry_is_the_earliest_of_each_file_the_process_uses(tmp_path, monkeypatch):
    chain = tmp_path / "chain.pem"
    chain.write_bytes(_certificate(400) + _certificate(20))
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.pem").write_bytes(_certificate(3650))
    monkeypatch.setenv("BOSAI_TLS_CERT_FILES", str(chain))
    monkeypatch.setenv("BOSAI_TLS_DIR", str(tmp_path / "tls"))
    for name in ("BOSAI_KAFKA_CA_FILE", "BOSAI_KAFKA_CERT_FILE", "BOSAI_CA_FILE", "BOSAI_KAFKA_CONFIG"):
        monkeypatch.delenv(name, raising=False)

    [family] = cert_expiry.CertificateExpiry().collect()
    found = {s.labels["file"]: (s.labels["subject"], s.value) for s in family.samples}
    now = dt.datetime.now(dt.UTC).timestamp()
    assert set(found) == {str(chain.resolve()), str((tmp_path / "tls" / "ca.pem").resolve())}
    subject, expires = found[str(chain.resolve())]
    assert subject == "CN=in 20 days"
    assert 19 * 86400 < expires - now < 21 * 86400
    assert cert_expiry.earliest_expiry(b"not a certificate") is None
