"""E-mail and chat channels: Japanese rendering (JMA's words as JMA's, the hub's as observations), threading,
redaction, templates, the subscriptions file's channels, retry classification and the suppression list."""

from __future__ import annotations

import html
import json
import random
import stat
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtplib.response import SMTPResponse
from click.testing import CliRunner

from streams.cli import cli
from streams.delivery import email_delivery
from streams.delivery.channel_text import context, redact_addresses, subject
from streams.delivery.channels import (
    ChatChannel,
    EmailChannel,
    Suppressions,
    change_suppressed,
    load_channels,
    read_suppressed,
)
from streams.delivery.chat_payloads import (
    PayloadError,
    check_template,
    classify_status,
    retry_after_s,
    sample_alerts,
    template_for,
)
from streams.delivery.connector import retrying
from streams.delivery.email_message import MailIdentity, message_id, render_email, smtp_code_result, thread_headers
from streams.delivery.subscriptions import load_subscriptions
from streams.delivery.webhooks import RetryPolicy
from streams.kernel.errors import ConfigError
from streams.packs.region_pack import load_pack
from tests.unit.delivery.test_wording import forbidden, hub_alerts, relayed_alerts

IDENTITY = MailIdentity("bosai-tochigi@pref.example.lg.jp", "unsubscribe@pref.example.lg.jp")
DATE = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)
CHAT_KINDS = ("teams", "slack", "lineworks")


@pytest.fixture(scope="module")
def both(project_root, kanagawa_with_river):
    return hub_alerts(project_root, kanagawa_with_river), relayed_alerts(project_root)


@pytest.fixture(scope="module")
def packs(project_root):
    return [load_pack(project_root / "regions" / name) for name in ("tochigi", "kanagawa")]


def _mail(alert, channel="utsunomiya-mail", municipality="宇都宮市", date=DATE):
    return render_email(alert, channel=channel, municipality=municipality, identity=IDENTITY, date=date)


def _texts(message) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


# -- wording -----------------------------------------------------------------------------------------------------
def test_the_hub_s_own_alerts_are_observations_in_every_mail_and_chat_and_never_use_jma_s_words(both):
    hub, _ = both
    assert {a["transition"] for a in hub} >= {"RAISED", "ESCALATED", "DEESCALATED", "CLEARED"}
    assert any(a.get("warning_level") for a in hub)
    for alert in hub:
        message = _mail(alert)
        text, body = _texts(message)
        outputs = {"subject": message["Subject"], "text": text, "html": body}
        outputs |= {
            kind: template_for(kind).render(alert, municipality="宇都宮市", channel="c").decode() for kind in CHAT_KINDS
        }
        for kind, output in outputs.items():
            assert forbidden(output) == [], f"{alert['alert_id']} {kind}: {forbidden(output)}"
            assert "観測" in output, f"{kind}: worded as an observation"
            assert "出典：気象庁" not in output, "the hub's own alert is not JMA's"
        assert message["Subject"].startswith("【観測情報】宇都宮市 ")
        assert "気象庁の発表ではありません" in text


def test_relayed_jma_reports_carry_jma_s_words_verbatim_and_the_credit(both):
    _, relayed = both
    for alert in relayed:
        message = _mail(alert, municipality="小田原市")
        text, body = _texts(message)
        official = alert["official"]
        assert message["Subject"].startswith("【気象庁発表・出典：気象庁】小田原市 ")
        assert alert["event"] in message["Subject"]
        for output in (text, body):
            assert "出典：気象庁" in output
            assert official["publishing_office"] in output
        assert official["headline"] in text  # JMA's words, as JMA wrote them
        assert html.escape(official["headline"], quote=False) in body
        for kind in CHAT_KINDS:
            payload = template_for(kind).render(alert, municipality="小田原市", channel="c").decode()
            assert "出典：気象庁" in payload
            assert json.dumps(official["headline"], ensure_ascii=False)[1:-1] in payload


def test_the_subject_names_municipality_level_and_transition():
    jma, hub = sample_alerts()
    assert subject(hub, "サンプル市") == "【観測情報】サンプル市 氾濫危険水位超過（警戒レベル4相当） 引き上げ"
    assert (
        subject(jma, "サンプル市") == "【気象庁発表・出典：気象庁】サンプル市 土砂災害警戒情報（警戒レベル4相当） 発表"
    )
    assert subject({**hub, "transition": "CLEARED", "status": "Exercise"}, "サンプル市").startswith("【訓練】")
    assert subject({**hub, "transition": "CLEARED"}, "サンプル市").endswith(" 解除")


def test_html_is_autoescaped_and_the_plain_text_is_not():
    _, hub = sample_alerts()
    alert = {**hub, "headline": "<script>alert(1)</script> & 雨"}
    text, body = _texts(_mail(alert))
    assert "<script>alert(1)</script> & 雨" in text
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 雨" in body


# -- threading and headers -------------------------------------------------------------------------------------
def test_every_message_of_an_episode_threads_to_its_first_with_stable_ids(both):
    hub, _ = both
    episode = sorted(
        (a for a in hub if a["alert_id"] == next(x["alert_id"] for x in hub if x["sequence"] >= 2)),
        key=lambda a: a["sequence"],
    )
    assert len(episode) >= 3
    first = message_id(episode[0]["alert_id"], 0, "utsunomiya-mail", "pref.example.lg.jp")
    for alert in episode:
        message = _mail(alert)
        again = _mail(alert, date=datetime(2027, 1, 1, tzinfo=UTC))  # a retry or redrive, later
        assert message["Message-ID"] == again["Message-ID"]  # the same message: receivers show it once
        assert message["Message-ID"] == f"<{alert['alert_id']}.{alert['sequence']}.utsunomiya-mail@pref.example.lg.jp>"
        if alert["sequence"] == 0:
            assert message["In-Reply-To"] is None and message["References"] is None
        else:
            previous = message_id(alert["alert_id"], alert["sequence"] - 1, "utsunomiya-mail", "pref.example.lg.jp")
            assert message["In-Reply-To"] == first
            assert message["References"].split() == ([first] if previous == first else [first, previous])
    other_channel = _mail(episode[0], channel="utsunomiya-ml")
    assert other_channel["Message-ID"] != _mail(episode[0])["Message-ID"]


def test_every_message_carries_list_unsubscribe_and_no_recipient():
    jma, _ = sample_alerts()
    message = _mail(jma)
    assert (
        message["List-Unsubscribe"] == "<mailto:unsubscribe@pref.example.lg.jp?subject=unsubscribe%20utsunomiya-mail>"
    )
    assert message["To"] == "undisclosed-recipients:;"
    assert message["From"].addresses[0].addr_spec == "bosai-tochigi@pref.example.lg.jp"
    assert message["Date"] == "Sun, 06 Dec 2026 01:02:03 +0000"
    assert message.get_content_type() == "multipart/alternative"


def test_a_message_id_of_odd_characters_is_a_stable_hash():
    odd = message_id("区 alert<id>", 3, "c", "example.lg.jp")
    assert odd == message_id("区 alert<id>", 3, "c", "example.lg.jp") and odd.endswith("@example.lg.jp>")
    assert " " not in odd and "区" not in odd
    assert thread_headers({"alert_id": "a", "sequence": 1}, "c", "d.jp")["References"] == "<a.0.c@d.jp>"


# -- redaction ----------------------------------------------------------------------------------------------------
def test_addresses_are_redacted_known_or_not():
    text = "550 5.1.1 <Bousai@City.Example.lg.jp>: Recipient address rejected; also someone@else.example.org"
    out = redact_addresses(text, ["bousai@city.example.lg.jp"])
    assert "@" not in out and out.count("[address]") == 2


def test_channels_print_no_address_and_no_webhook_url(project_root, packs, tmp_path):
    channels = load_channels(project_root / "deploy/subscriptions.example.yaml", packs, environ=_example_environ())
    for channel in channels:
        shown = repr(channel)
        assert "@" not in shown and "https://" not in shown and "pw-secret" not in shown


# -- the subscriptions file ---------------------------------------------------------------------------------------
def _example_environ():
    return {
        "BOSAI_WEBHOOK_SECRET_UTSUNOMIYA": "a",
        "BOSAI_WEBHOOK_SECRET_YOKOHAMA": "b",
        "BOSAI_SMTP_PASSWORD": "pw-secret",
        "BOSAI_CHAT_UTSUNOMIYA_TEAMS": "https://example.webhook.office.com/hook/T0",
        "BOSAI_CHAT_YOKOHAMA_LINEWORKS": "https://example.worksmobile.com/message/v1/bot/1",
        "BOSAI_CHAT_YOKOHAMA_CUSTOM": "https://chat.example.city.yokohama.lg.jp/hooks/1",
    }


def test_the_example_file_loads_its_subscriptions_and_channels(project_root, packs):
    path = project_root / "deploy/subscriptions.example.yaml"
    channels = load_channels(path, packs, environ=_example_environ())
    assert [(c.id, c.municipality_code, c.kind) for c in channels] == [
        ("utsunomiya-bousai-mail", "09201", "email"),
        ("utsunomiya-teams", "09201", "teams"),
        ("yokohama-lineworks", "14100", "lineworks"),
        ("yokohama-own-template", "14100", "template"),
    ]
    mail = channels[0]
    assert isinstance(mail, EmailChannel) and len(mail.recipients) == 2
    assert mail.smtp.tls == "starttls" and mail.smtp.port == 587 and mail.smtp.password == "pw-secret"
    assert mail.municipality_name == "宇都宮市"
    custom = channels[3]
    assert isinstance(custom, ChatChannel) and custom.retry.max_attempts == 4
    body = json.loads(custom.template.render(sample_alerts()[0], municipality="横浜市", channel=custom.id))
    assert body["jma"]["credit"] == "出典：気象庁" and body["source"] == "jma"
    assert len(load_subscriptions(path, packs, environ=_example_environ())) == 2


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "subscriptions.yaml"
    path.write_text(text, encoding="utf-8")
    return path


C = "channels:\n  - {id: a, municipality: 宇都宮市"  # a channel entry, its kind to follow
SMTP = """\
email:
  host: smtp.example.lg.jp
  username: hub
  password_env: PW
  from: bosai@example.lg.jp
  unsubscribe: unsub@example.lg.jp
  recipient_domains: [lg.jp]
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (SMTP + C + ", email: {to: [resident@gmail.com]}}\n", "recipient_domains"),
        (SMTP + C + ", email: {to: [not-an-address]}}\n", "not an e-mail address"),
        (SMTP + C + ", email: {}}\n", "exactly one of to, to_file"),
        (C + ", email: {to: [x@a.lg.jp]}}\n", "missing key 'email'"),
        (SMTP + C + "}\n", "exactly one of email, chat"),
        (SMTP + C.replace("宇都宮市", "不明市") + ", chat: {kind: slack, url_env: U}}\n", "municipality"),
        (C + ", chat: {kind: slack, url: 'https://h/x'}}\n", "url_env or url_file"),
        (C + ", chat: {kind: skype, url_env: U}}\n", "teams | slack"),
        (C + ", chat: {kind: slack, url_env: NOPE}}\n", "NOPE (url_env) is not set"),
        (
            "subscriptions:\n  - {id: a, municipality: 宇都宮市, url: 'https://h/', secret_env: U}\n"
            + C
            + ", chat: {kind: slack, url_env: U}}\n",
            "declared twice",
        ),
        (SMTP.replace("  username: hub\n", "  username: hub\n  tls: none\n") + "channels: []\n", "in the clear"),
        (SMTP.replace("password_env: PW", "password: hunter2") + "channels: []\n", "secrets do not belong"),
    ],
)
def test_a_bad_channel_is_refused_naming_the_file_the_entry_and_the_key(tmp_path, packs, body, message):
    path = _write(tmp_path, "version: 1\n" + body)
    with pytest.raises(ConfigError) as caught:
        load_channels(path, packs, environ={"PW": "pw", "U": "https://hooks.example/1"})
    text = str(caught.value)
    assert str(path) in text and message in text, text
    assert "hunter2" not in text and "resident@gmail.com" not in text


def test_an_operator_template_that_is_not_json_is_refused_on_load(tmp_path, packs):
    (tmp_path / "bad.j2").write_text('{"text": {{ subject }}}', encoding="utf-8")  # unquoted: not JSON
    path = _write(
        tmp_path,
        "version: 1\n" + C.replace("id: a", "id: own") + ", chat: {kind: template, template: bad.j2, url_env: U}}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_channels(path, packs, environ={"U": "https://hooks.example/1"})
    assert "channel own" in str(caught.value) and "not JSON" in str(caught.value)


def test_templates_render_json_or_say_why_not():
    jma, hub = sample_alerts()
    with pytest.raises(PayloadError, match="not JSON"):
        check_template(template_for("template", '{"a": {{ subject }}}'), [hub])
    with pytest.raises(PayloadError, match="not a Jinja2 template"):
        template_for("template", '{"a": {{ subject }')
    with pytest.raises(PayloadError, match="not an object"):
        check_template(template_for("template", "{{ subject | tojson }}"), [hub])
    with pytest.raises(PayloadError, match="does not render"):
        check_template(template_for("template", '{"a": {{ nothing_here | tojson }}}'), [hub])
    with pytest.raises(PayloadError, match="does not render"):  # the sandbox
        check_template(template_for("template", '{"a": {{ "".__class__.__mro__ | tojson }}}'), [hub])
    quoted = template_for("template", '{"h": {{ headline | tojson }}}').render(
        {**hub, "headline": 'a "quoted" \\ <b>'}, municipality="m", channel="c"
    )
    assert json.loads(quoted) == {"h": 'a "quoted" \\ <b>'}
    for kind in CHAT_KINDS:
        check_template(template_for(kind), [jma, hub])
    slack = json.loads(template_for("slack").render({**hub, "headline": "a<b>&c"}, municipality="m", channel="c"))
    assert "a&lt;b&gt;&amp;c" in slack["text"]


def test_the_context_names_jma_fields_only_for_relayed_reports():
    jma, hub = sample_alerts()
    assert context(jma, municipality="m", channel="c")["jma"]["office"] == "サンプル地方気象台"
    hub_context = context(hub, municipality="m", channel="c")
    assert hub_context["jma"] is None and hub_context["instruction"].startswith("警戒レベル4相当")
    assert context({**hub, "transition": "CLEARED"}, municipality="m", channel="c")["instruction"] == ""


# -- retry classification -------------------------------------------------------------------------------------------
def test_smtp_replies_5xx_are_permanent_and_4xx_are_retried():
    assert smtp_code_result(550) == ("smtp_5xx", True)
    assert smtp_code_result(535) == ("smtp_5xx", True)
    assert smtp_code_result(451) == ("smtp_4xx", False)
    assert smtp_code_result(421) == ("smtp_4xx", False)
    assert smtp_code_result(-1) == ("connection", False)


def test_chat_answers_429_waits_5xx_retries_4xx_is_permanent():
    assert [classify_status(s) for s in (200, 202, 204)] == ["ok"] * 3
    assert classify_status(429) == "rate_limited"
    assert [classify_status(s) for s in (500, 502, 503, 408)] == ["retry"] * 4
    assert [classify_status(s) for s in (400, 401, 403, 404, 410, 413, 301)] == ["permanent"] * 7
    assert retry_after_s("7", 0) == 7.0
    assert retry_after_s("Sun, 06 Dec 2026 10:00:30 GMT", datetime(2026, 12, 6, 10, 0, tzinfo=UTC).timestamp()) == 30
    assert retry_after_s("soon", 0) is None and retry_after_s(None, 0) is None


async def test_retrying_honours_a_requested_wait_instead_of_the_backoff(monkeypatch):
    waits = []

    async def no_sleep(seconds):
        waits.append(seconds)

    monkeypatch.setattr("streams.delivery.connector.asyncio.sleep", no_sleep)
    answers = iter([(False, False, 3.0), (False, False, None), (True, False, None)])

    async def attempt(_n):
        return next(answers)

    policy = RetryPolicy(max_attempts=5, initial_backoff_s=0.2, max_backoff_s=0.4)
    delivered, attempts, _ = await retrying(attempt, policy, random.Random(1), requested_wait=lambda hint: hint)
    assert (delivered, attempts) == (True, 3)
    assert waits[0] == 3.0 and 0.2 <= waits[1] <= 0.4  # the backoff of attempt 3


def _email_channel(tmp_path, recipients=("a@city.example.lg.jp", "b@city.example.lg.jp"), attempts=3):
    from streams.delivery.channels import SmtpSettings

    smtp = SmtpSettings(
        host="127.0.0.1",
        port=2525,
        tls="starttls",
        identity=IDENTITY,
        username="hub",
        password="pw-secret-1234",
        suppression_file=tmp_path / "suppressed.txt",
    )
    retry = RetryPolicy(max_attempts=attempts, initial_backoff_s=0.001, max_backoff_s=0.002, timeout_s=1)
    return EmailChannel("mail", "tochigi", "09201", "宇都宮市", tuple(recipients), smtp, retry)


def _target(channel):
    from streams.platform.avro import default_store

    return email_delivery.EmailTarget(channel, ["t"], "dlq", default_store())


@pytest.mark.parametrize(
    ("failures", "outcome", "calls", "reason"),
    [
        (
            [aiosmtplib.SMTPResponseException(554, "5.7.1 message refused for a@city.example.lg.jp")],
            "failed",
            1,
            "permanent",
        ),
        ([aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials pw-secret-1234")], "failed", 1, "permanent"),
        ([aiosmtplib.SMTPResponseException(451, "try later")] * 3, "failed", 3, "451"),
        (
            [aiosmtplib.SMTPConnectError("Error connecting to 127.0.0.1 on port 2525")] * 3,
            "failed",
            3,
            "Error connecting",
        ),
        ([aiosmtplib.SMTPReadTimeoutError("Timed out")] * 3, "failed", 3, "no answer within 1s"),
        ([aiosmtplib.SMTPResponseException(451, "later"), None], "delivered", 2, ""),
    ],
)
async def test_smtp_failures_are_retried_or_not_as_their_class_says(
    tmp_path, monkeypatch, failures, outcome, calls, reason
):
    seen = []

    async def send(message, **kwargs):
        seen.append(kwargs["recipients"])
        failure = failures[len(seen) - 1] if len(seen) <= len(failures) else None
        if failure is not None:
            raise failure
        return {}, "250 OK"

    monkeypatch.setattr(email_delivery.aiosmtplib, "send", send)
    channel = _email_channel(tmp_path)
    result, detail = await _target(channel).send(sample_alerts()[1])
    assert (result, len(seen)) == (outcome, calls)
    assert reason in detail
    assert "@" not in detail.replace("@city", "") and "city.example" not in detail and "pw-secret" not in detail


async def test_only_the_recipients_still_waiting_are_retried_and_5xx_refusals_are_dropped(tmp_path, monkeypatch):
    seen = []
    a, b, c = "a@city.example.lg.jp", "b@city.example.lg.jp", "c@city.example.lg.jp"

    async def send(message, **kwargs):
        seen.append(list(kwargs["recipients"]))
        if len(seen) == 1:
            return {b: SMTPResponse(450, "mailbox busy"), c: SMTPResponse(550, "no such user")}, "250 OK"
        return {}, "250 OK"

    monkeypatch.setattr(email_delivery.aiosmtplib, "send", send)
    result, _ = await _target(_email_channel(tmp_path, (a, b, c))).send(sample_alerts()[1])
    assert result == "delivered" and seen == [[a, b, c], [b]]


async def test_every_recipient_refused_for_good_is_a_permanent_failure(tmp_path, monkeypatch):
    async def send(message, **kwargs):
        refusals = [aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", r) for r in kwargs["recipients"]]
        raise aiosmtplib.SMTPRecipientsRefused(refusals)

    monkeypatch.setattr(email_delivery.aiosmtplib, "send", send)
    result, detail = await _target(_email_channel(tmp_path)).send(sample_alerts()[1])
    assert result == "failed" and "1 attempt(s)" in detail and "permanent" in detail and "city.example" not in detail


# -- the suppression list ---------------------------------------------------------------------------------------------
async def test_suppressed_recipients_are_skipped_and_the_file_is_read_again_when_it_changes(tmp_path, monkeypatch):
    seen = []

    async def send(message, **kwargs):
        seen.append(list(kwargs["recipients"]))
        return {}, "250 OK"

    monkeypatch.setattr(email_delivery.aiosmtplib, "send", send)
    channel = _email_channel(tmp_path)
    target = _target(channel)
    assert await target.send(sample_alerts()[1]) == ("delivered", "")
    assert change_suppressed(channel.smtp.suppression_file, "A@City.Example.lg.jp", suppress=True)
    assert await target.send(sample_alerts()[1]) == ("delivered", "")
    change_suppressed(channel.smtp.suppression_file, "b@city.example.lg.jp", suppress=True)
    assert await target.send(sample_alerts()[1]) == ("suppressed", "")
    assert seen == [list(channel.recipients), ["b@city.example.lg.jp"]]
    assert stat.S_IMODE(channel.smtp.suppression_file.stat().st_mode) == 0o600


def test_the_suppression_file_is_kept_private_and_changed_by_the_cli(tmp_path):
    config = _write(tmp_path, f"version: 1\nemail:\n  suppression_file: {tmp_path / 'sup.txt'}\nchannels: []\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["sink", "suppress", "Someone@Example.lg.jp", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "suppressed; 1 address(es)" in result.output and "someone" not in result.output.lower()
    assert read_suppressed(tmp_path / "sup.txt") == {"someone@example.lg.jp"}
    again = runner.invoke(cli, ["sink", "suppress", "someone@example.lg.jp", "--file", str(tmp_path / "sup.txt")])
    assert "unchanged" in again.output
    result = runner.invoke(cli, ["sink", "unsuppress", "someone@example.lg.jp", "--config", str(config)])
    assert result.exit_code == 0 and read_suppressed(tmp_path / "sup.txt") == frozenset()
    (tmp_path / "sup.txt").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Suppressions(tmp_path / "sup.txt").current()
    assert Suppressions(tmp_path / "missing.txt").current() == frozenset()


def test_a_chat_channel_with_an_unreachable_template_file_names_it(tmp_path, packs):
    path = _write(
        tmp_path,
        "version: 1\n" + C.replace("id: a", "id: own") + ", chat: {kind: template, template: none.j2, url_env: U}}\n",
    )
    with pytest.raises(ConfigError, match="none.j2"):
        load_channels(path, packs, environ={"U": "https://hooks.example/1"})


def test_the_sink_commands_load_the_channels_of_the_file(project_root, monkeypatch):
    for name, value in _example_environ().items():
        monkeypatch.setenv(name, value)
    config = str(project_root / "deploy/subscriptions.example.yaml")
    result = CliRunner().invoke(cli, ["sink", "redrive", "--config", config, "--channel", "nope"])
    assert result.exit_code != 0
    assert "no subscription or channel nope" in str(result.exception or result.output)


def test_channel_targets_read_their_municipality_s_topics_and_dead_letter_to_the_sink_s(project_root, packs):
    from streams.delivery.chat_delivery import ChatTarget
    from streams.delivery.email_delivery import EmailTarget
    from streams.delivery.sink import channel_targets
    from streams.platform.avro import default_store
    from streams.platform.topic_catalog import default_catalog_path, load_catalog

    channels = load_channels(project_root / "deploy/subscriptions.example.yaml", packs, environ=_example_environ())
    targets = channel_targets(channels, packs, load_catalog(default_catalog_path()), default_store())
    assert [type(t) for t in targets] == [EmailTarget, ChatTarget, ChatTarget, ChatTarget]
    assert targets[0].topics == ("bosai.tochigi.alerts.09201",)
    assert len(targets[2].topics) > 10 and all(t.startswith("bosai.kanagawa.alerts.141") for t in targets[2].topics)
    assert {t.deadletter_topic for t in targets} == {"bosai.tochigi.sink.deadletter", "bosai.kanagawa.sink.deadletter"}
    assert {t.stage for t in targets} == {"sink.email", "sink.chat"}
    assert {t.group_prefix for t in targets} == {"bosai-sink"}
