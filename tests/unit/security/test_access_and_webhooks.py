"""Access file generation/validation, feed visibility by sharing level, webhook signing and backoff (no broker)."""

from __future__ import annotations

import random

import pytest

from streams.delivery.atom import CurrentAlerts
from streams.delivery.webhooks import RetryPolicy, sign, verify
from streams.kernel.access import find_principal, plan, visible
from streams.kernel.errors import ConfigError
from streams.packs.region_pack import load_pack
from streams.platform.access_file import default_access_path, generate, load_access, render
from streams.platform.kafka_admin import salted_password
from streams.platform.kafka_protocol import AclBinding
from streams.platform.topic_catalog import default_catalog_path, load_catalog


@pytest.fixture(scope="module")
def packs(project_root):
    return [load_pack(project_root / "regions" / name) for name in ("tochigi", "kanagawa")]


@pytest.fixture(scope="module")
def policy(packs, tmp_path_factory):
    path = tmp_path_factory.mktemp("access") / "access.yaml"
    path.write_text(render(generate(packs, load_catalog(default_catalog_path()))), encoding="utf-8")
    return load_access(path)


def test_the_committed_access_file_is_what_the_packs_generate(packs):
    assert default_access_path().read_text(encoding="utf-8") == render(
        generate(packs, load_catalog(default_catalog_path()))
    ), "run `bosai access generate`"


def test_principals_follow_the_rules_of_shared_use(policy, packs):
    names = {p.name for p in policy.principals}
    assert {"hub", "pref-tochigi", "pref-kanagawa", "public", "muni-09201", "muni-14100"} <= names
    assert "muni-14104" not in names, "wards are read by their designated city"
    yokohama = policy.principal("muni-14100")
    assert (
        yokohama.municipality_codes[:2] == ("14101", "14102")
        and "bosai.kanagawa.alerts.14104" in yokohama.readable_topics()
    )
    assert policy.principal("muni-09201").readable_topics() == ["bosai.tochigi.alerts.09201"]
    assert policy.principal("public").readable_topics() == [
        "bosai.kanagawa.alerts.public",
        "bosai.tochigi.alerts.public",
    ]
    writers = {b.principal for b in policy.bindings() if b.operation == "write"}
    assert writers == {"User:hub"}
    assert find_principal(policy, "宇都宮市", packs).name == "muni-09201"
    assert find_principal(policy, "横浜市", packs).name == "muni-14100"
    with pytest.raises(ConfigError, match="no principal"):
        find_principal(policy, "大阪市", packs)


def test_plan_adds_what_is_missing_and_removes_what_is_not_declared(policy):
    stray = AclBinding("User:mallory", "topic", "prefixed", "bosai.", "read")
    declared = sorted(policy.bindings())
    result = plan(policy, set(declared[1:]) | {stray}, ["muni-09201", "mallory"])
    assert result.add == (declared[0],) and result.remove == (stray,)
    assert result.unknown_credentials == ("mallory",) and "muni-09201" not in result.without_credential
    assert not plan(policy, set(declared), []).changes


@pytest.mark.parametrize(
    "text, message",
    [
        ("version: 2\n", "version: 1"),
        ("version: 1\nprefix: bosai\nprincipals:\n  - {name: Bad Name, role: hub}\n", "name is 'Bad Name'"),
        ("version: 1\nprefix: bosai\nprincipals:\n  - {name: x, role: king}\n", "role is 'king'"),
        (
            "version: 1\nprefix: bosai\nprincipals:\n  - name: x\n    role: public\n    grants:\n"
            "      - {resource: topic, name: t, operations: [write]}\n",
            "only the hub may write",
        ),
        (
            "version: 1\nprefix: bosai\nprincipals:\n  - name: x\n    role: public\n    grants:\n"
            "      - {resource: topic, name: t, operations: [fly]}\n",
            r"operations is \['fly'\]",
        ),
        ("version: 1\nprefix: bosai\nprincipals:\n  - {name: muni-1, role: municipality}\n", "municipality_codes"),
    ],
)
def test_a_broken_access_file_says_where_and_what(tmp_path, text, message):
    path = tmp_path / "access.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_access(path)
    assert str(path) in str(info.value)


def _alert(sharing, codes, region="tochigi", alert_id="a", sequence=0, msg_type="ALERT", observed_at=0):
    return {
        "alert_id": alert_id,
        "sequence": sequence,
        "sharing_level": sharing,
        "municipality_codes": codes,
        "region": region,
        "msg_type": msg_type,
        "observed_at": observed_at,
        "headline": "h",
    }


def test_who_sees_an_alert_follows_its_sharing_level(policy):
    utsunomiya, yokohama = policy.principal("muni-09201"), policy.principal("muni-14100")
    public, prefecture = policy.principal("public"), policy.principal("pref-tochigi")
    municipal = _alert("MUNICIPAL", ["09201"])
    internal = _alert("INTERNAL", ["09201"])
    ward = _alert("PUBLIC", ["14104", "14100"], region="kanagawa")
    assert visible(utsunomiya, municipal) and not visible(utsunomiya, internal)
    assert not visible(public, municipal) and visible(public, ward)
    assert visible(prefecture, internal) and not visible(prefecture, ward)
    assert visible(yokohama, ward) and not visible(yokohama, municipal)


def test_current_alerts_keep_the_latest_message_and_recent_cancels_only():
    current = CurrentAlerts(cancel_retention_ms=3_600_000)
    current.apply(_alert("PUBLIC", ["09201"], alert_id="x", sequence=1, msg_type="UPDATE", observed_at=10))
    current.apply(_alert("PUBLIC", ["09201"], alert_id="x", sequence=0, observed_at=5))  # late: ignored
    current.apply(_alert("PUBLIC", ["09201"], alert_id="y", sequence=1, msg_type="CANCEL", observed_at=20))
    assert [(r["alert_id"], r["sequence"]) for r in current.current()] == [("y", 1), ("x", 1)]
    current.apply(_alert("PUBLIC", ["09202"], alert_id="z", observed_at=20 + 3_600_001))
    assert [r["alert_id"] for r in current.current()] == ["z", "x"]  # the old cancel has aged out
    assert "x.0" in current.by_identifier


def test_webhook_signatures_verify_and_backoff_grows_with_jitter_under_the_cap():
    body = b'{"alert_id":"a"}'
    signature = sign("secret", 1_700_000_000, body)
    assert signature.startswith("sha256=") and verify("secret", "1700000000", body, signature)
    assert not verify("secret", "1700000001", body, signature)  # timestamp is signed
    assert not verify("other", "1700000000", body, signature)
    assert not verify("secret", "1700000000", body + b" ", signature)
    policy, rng = RetryPolicy(initial_backoff_s=1, max_backoff_s=8), random.Random(7)
    delays = [[policy.delay(attempt, rng) for attempt in range(1, 7)] for _ in range(50)]
    for attempt, ceiling in enumerate((1, 2, 4, 8, 8, 8)):
        column = [d[attempt] for d in delays]
        assert all(ceiling / 2 <= d <= ceiling for d in column)
        assert len({round(d, 6) for d in column}) > 40, "jittered"


def test_scram_salted_password_is_rfc5802_hi():
    # Hi(password, salt, 1) = HMAC(password, salt || INT(1)) for one iteration.
    import hashlib
    import hmac

    salt = b"salt"
    assert salted_password("pw", salt, 1) == hmac.new(b"pw", salt + b"\x00\x00\x00\x01", hashlib.sha512).digest()


def test_the_example_subscriptions_file_loads(project_root, packs):
    from streams.delivery.subscriptions import load_subscriptions

    subs = load_subscriptions(
        project_root / "deploy/subscriptions.example.yaml",
        packs,
        environ={"BOSAI_WEBHOOK_SECRET_UTSUNOMIYA": "a", "BOSAI_WEBHOOK_SECRET_YOKOHAMA": "b"},
    )
    assert [(s.id, s.municipality_code, s.format) for s in subs] == [
        ("utsunomiya-bousai", "09201", "cap"),
        ("yokohama-bousai", "14100", "json"),
    ]
