"""E-mail and chat channels of the subscriptions file (``bosai sink --config``): read, validate, resolve secrets.

Beside the webhook ``subscriptions``, the file may hold ``channels``: one per municipality and way of
reaching its staff, each either ``email`` (recipients: municipal staff and municipal mailing lists, never
residents) or ``chat`` (an incoming webhook of Microsoft Teams, Slack, LINE WORKS, or an operator's JSON
template). E-mail channels send through the one SMTP relay of the file's ``email`` section::

    email:
      host: smtp.pref.example.lg.jp
      port: 587
      tls: starttls                  # starttls (default) | implicit (port 465) | none (a local relay, no AUTH)
      username: bosai-hub            # or username_env
      password_env: BOSAI_SMTP_PASSWORD   # or password_file (0600)
      from: bosai-tochigi@pref.example.lg.jp
      unsubscribe: bosai-unsubscribe@pref.example.lg.jp    # List-Unsubscribe: mailto
      suppression_file: /var/lib/bosai/email-suppressed.txt
      recipient_domains: [lg.jp]     # optional: every recipient must be in one of these (and subdomains)
    channels:
      - id: utsunomiya-mail
        municipality: 宇都宮市
        email: {to: [bousai@city.utsunomiya.example.lg.jp]}          # or to_file (0600, one a line)
      - id: utsunomiya-teams
        municipality: 宇都宮市
        chat: {kind: teams, url_env: BOSAI_CHAT_UTSUNOMIYA_TEAMS}   # or url_file; kind template: template: FILE

Addresses and webhook URLs are kept like credentials: never in a repr, a log, a metric or a dead letter.
Channel ids share one name space with the webhook subscriptions (they key the dead letters). Errors name the
file, the entry and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streams.delivery.channel_text import ADDRESS
from streams.delivery.chat_payloads import (
    KINDS,
    ChatTemplate,
    PayloadError,
    check_template,
    sample_alerts,
    template_for,
)
from streams.delivery.email_message import MailIdentity
from streams.delivery.subscriptions import SUBSCRIPTION_ID, URL, municipality_of, read_document, retry_policy, secret_of
from streams.delivery.webhooks import RetryPolicy
from streams.kernel.errors import ConfigError
from streams.kernel.region import RegionPack
from streams.platform.checks import Entry
from streams.platform.secret_files import check_private, write_secret

TLS_MODES = ("starttls", "implicit", "none")
HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]+\]")
DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP relay every e-mail channel of the file sends through."""

    host: str
    port: int
    tls: str  # starttls | implicit | none
    identity: MailIdentity
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: Path | None = None  # a private CA the relay's certificate is checked against (default: the system's)
    suppression_file: Path | None = None


@dataclass(frozen=True)
class EmailChannel:
    id: str
    region: str
    municipality_code: str
    municipality_name: str
    recipients: tuple[str, ...] = field(repr=False)  # like credentials: never printed
    smtp: SmtpSettings = field(repr=False)
    retry: RetryPolicy = RetryPolicy()
    kind: str = "email"


@dataclass(frozen=True)
class ChatChannel:
    id: str
    region: str
    municipality_code: str
    municipality_name: str
    kind: str  # teams | slack | lineworks | template
    url: str = field(repr=False)  # a secret: an incoming webhook's URL is its credential
    template: ChatTemplate = field(repr=False)
    retry: RetryPolicy = RetryPolicy()


Channel = EmailChannel | ChatChannel


def normalise_address(address: str) -> str:
    return address.strip().lower()


def _addresses(entry: Entry, values: Sequence[str], domains: tuple[str, ...], where: str) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        address = value.strip()
        if not ADDRESS.fullmatch(address):
            raise entry.error(f"{where}: entry {len(out) + 1} is not an e-mail address", "addr-spec: local@domain")
        domain = address.rpartition("@")[2].lower()
        if domains and not any(domain == d or domain.endswith(f".{d}") for d in domains):
            raise entry.error(
                f"{where}: entry {len(out) + 1} is outside recipient_domains",
                f"an address in {', '.join(domains)} (municipal staff and mailing lists only)",
            )
        out.append(address)
    if not out:
        raise entry.error(f"{where}: no recipients", "at least one address")
    return tuple(out)


def _recipients(entry: Entry, domains: tuple[str, ...]) -> tuple[str, ...]:
    if ("to" in entry) == ("to_file" in entry):
        raise entry.error("needs exactly one of to, to_file", "to: [addresses] or to_file: a 0600 file, one a line")
    if "to" in entry:
        return _addresses(entry, entry.strings("to", expected="a list of e-mail addresses"), domains, "to")
    path = Path(str(entry.get("to_file"))).expanduser()
    check_private(path, "the recipients file", where=f"{entry.where}: to_file of {entry.file}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise entry.error(f"to_file: cannot read: {exc}", "a readable UTF-8 file") from None
    values = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return _addresses(entry, values, domains, "to_file")


def _smtp(document: Entry, environ: Mapping[str, str]) -> tuple[SmtpSettings, tuple[str, ...]]:
    entry = document.child("email", expected="a mapping: host, port, from, unsubscribe …", required=True)
    allowed = {
        "host",
        "port",
        "tls",
        "username",
        "username_env",
        "password_env",
        "password_file",
        "ca_file",
        "from",
        "unsubscribe",
        "suppression_file",
        "recipient_domains",
        "display_name",
    }
    if "password" in entry:
        raise entry.error("key 'password': secrets do not belong in this file", "password_env or password_file")
    unknown = set(entry.value) - allowed
    if unknown:
        raise entry.error(f"unknown keys {sorted(unknown)}", ", ".join(sorted(allowed)))
    tls = entry.choice("tls", TLS_MODES, default="starttls")
    port = entry.integer("port", expected="a TCP port 1..65535", minimum=1, default=465 if tls == "implicit" else 587)
    if port > 65535:
        raise entry.error(f"port is {port}", "a TCP port 1..65535")
    username = entry.text("username", expected="the SMTP user name", default="")
    if entry.get("username_env"):
        username = secret_of(entry, environ, "username", "the SMTP user name file")
    password = ""
    if entry.get("password_env") or entry.get("password_file"):
        password = secret_of(entry, environ, "password", "the SMTP password file")
    if bool(username) != bool(password):
        raise entry.error("AUTH needs both a user name and a password", "username (or username_env) and password_*")
    if password and tls == "none":
        raise entry.error("AUTH without TLS would send the password in the clear", "tls: starttls or implicit")
    sender = entry.text("from", pattern=ADDRESS, expected="the sender's address (a domain the operator owns)")
    unsubscribe = entry.text("unsubscribe", pattern=ADDRESS, expected="the address of unsubscribe requests (mailto)")
    domains = tuple(d.lower() for d in entry.strings("recipient_domains", expected="a list of domains"))
    for domain in domains:
        if not DOMAIN.fullmatch(domain):
            raise entry.error(f"recipient_domains: {domain!r}", "DNS domains, e.g. lg.jp")
    ca_file = Path(str(entry.get("ca_file"))).expanduser() if entry.get("ca_file") else None
    if ca_file is not None and not ca_file.is_file():
        raise entry.error(
            f"ca_file {ca_file} does not exist", "a PEM file of the CA that signed the relay's certificate"
        )
    suppression = entry.get("suppression_file")
    return (
        SmtpSettings(
            host=entry.text("host", pattern=HOST, expected="the SMTP relay's host name or address"),
            port=port,
            tls=tls,
            identity=MailIdentity(
                sender,
                unsubscribe,
                entry.text("display_name", expected="the From display name", default="防災データ連携基盤"),
            ),
            username=username,
            password=password,
            ca_file=ca_file,
            suppression_file=Path(str(suppression)).expanduser() if suppression else None,
        ),
        domains,
    )


def _chat(entry: Entry, environ: Mapping[str, str], base: Path) -> tuple[str, str, ChatTemplate]:
    kind = entry.choice("kind", KINDS, default=None)
    if "url" in entry:
        raise entry.error("key 'url': a webhook URL is a secret: not in this file", "url_env or url_file")
    url = secret_of(entry, environ, "url", "the chat webhook URL file")
    if not URL.fullmatch(url):
        raise entry.error("the webhook URL (url_env/url_file) is not an http:// or https:// URL", "an https:// URL")
    source = None
    if kind == "template":
        name = entry.text("template", expected="the file of a Jinja2 JSON template (kind: template)")
        path = (base / name) if not Path(name).is_absolute() else Path(name)
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise entry.error(f"template {path}: cannot read: {exc}", "a UTF-8 Jinja2 template") from None
    elif "template" in entry:
        raise entry.error(f"key 'template' with kind {kind}", "kind: template (or no template key)")
    try:
        template = template_for(kind, source)
        check_template(template, sample_alerts())
    except PayloadError as exc:
        raise entry.error(f"template: {exc}", "a Jinja2 template rendering a JSON object (use | tojson)") from None
    return kind, url, template


def load_channels(
    path: Path, packs: Sequence[RegionPack], *, environ: Mapping[str, str] | None = None
) -> list[Channel]:
    """The e-mail and chat channels of a subscriptions file (none when it has no ``channels``)."""
    environ = os.environ if environ is None else environ
    document = read_document(path)
    if "channels" not in document:
        if "email" in document:
            raise document.error("an email section without channels", "channels: [...] using it, or no email")
        return []
    defaults = document.child("defaults")
    smtp = _smtp(document, environ) if "email" in document else None  # checked even before a channel uses it
    taken = {str(s.get("id")) for s in document.get("subscriptions") or [] if isinstance(s, dict)}
    out: list[Channel] = []
    for i, raw in document.entries("channels", expected="a non-empty list of channels"):
        entry = Entry(raw, path, f"channels[{i}]", expected="a mapping with id, municipality, and email or chat")
        channel_id = entry.text(
            "id",
            pattern=SUBSCRIPTION_ID,
            expected="lower-case letters, digits, '_' or '-' (it names the consumer group)",
        )
        entry = entry.at(f"channel {channel_id}")
        if channel_id in taken:
            raise entry.error(
                "id declared twice", "ids unique among subscriptions and channels (they key dead letters)"
            )
        taken.add(channel_id)
        unknown = set(entry.value) - {"id", "municipality", "email", "chat", "retry"}
        if unknown:
            raise entry.error(f"unknown keys {sorted(unknown)}", "id, municipality, email or chat, retry")
        if ("email" in entry) == ("chat" in entry):
            raise entry.error("needs exactly one of email, chat", "email: {to: …} or chat: {kind: …, url_env: …}")
        pack, code = municipality_of(entry, packs)
        name = pack.name_of(code)
        retry = retry_policy(entry, defaults)
        if "email" in entry:
            if smtp is None:
                smtp = _smtp(document, environ)
            settings, domains = smtp
            recipients = _recipients(entry.child("email", required=True), domains)
            out.append(EmailChannel(channel_id, pack.name, code, name, recipients, settings, retry))
        else:
            kind, url, template = _chat(entry.child("chat", required=True), environ, path.parent)
            out.append(ChatChannel(channel_id, pack.name, code, name, kind, url, template, retry))
    return out


# -- the suppression list ---------------------------------------------------------------------------------------
def suppression_file_of(path: Path) -> Path:
    """The suppression file a subscriptions file names (``email.suppression_file``), nothing else resolved."""
    document = read_document(path)
    entry = document.child("email")
    value = entry.get("suppression_file")
    if not value:
        raise entry.error("no suppression_file", "email: {suppression_file: a path the sink may read}")
    return Path(str(value)).expanduser()


def read_suppressed(path: Path) -> frozenset[str]:
    """The suppressed addresses (normalised); a missing file is an empty list; a file others may read is refused."""
    if not path.exists():
        return frozenset()
    check_private(path, "the e-mail suppression file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            path, f"cannot read the suppression file: {exc}", expected="UTF-8, one address a line"
        ) from None
    return frozenset(normalise_address(line) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def change_suppressed(path: Path, address: str, *, suppress: bool) -> bool:
    """Add (or remove) an address; written 0600 atomically. True when the list changed."""
    if not ADDRESS.fullmatch(address.strip()):
        raise ConfigError(path, "not an e-mail address", expected="addr-spec: local@domain")
    current = set(read_suppressed(path))
    key = normalise_address(address)
    changed = (key not in current) if suppress else (key in current)
    if changed:
        current = current | {key} if suppress else current - {key}
        header = "# bosai sink suppress/unsuppress: e-mail addresses the sink never sends to (bounces, unsubscribes)\n"
        write_secret(path, header + "".join(f"{a}\n" for a in sorted(current)))
    return changed


class Suppressions:
    """The suppression list as the sink sees it: read again whenever the file changed (operators edit it live)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._addresses: frozenset[str] = frozenset()

    def current(self) -> frozenset[str]:
        if self.path is None:
            return frozenset()
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            self._addresses = read_suppressed(self.path)
            self._stamp = stamp
        return self._addresses

    def split(self, recipients: Sequence[str]) -> tuple[list[str], int]:
        """(the recipients to send to, how many are suppressed)."""
        suppressed = self.current()
        keep = [r for r in recipients if normalise_address(r) not in suppressed]
        return keep, len(recipients) - len(keep)
