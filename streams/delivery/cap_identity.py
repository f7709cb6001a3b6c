"""Who sends the hub's CAP messages: ``BOSAI_CAP_AUTHORITY`` (a domain the operator owns) and, optionally, the
sender templates, read from the environment and checked (:class:`streams.delivery.cap.CapIdentity`).

    BOSAI_CAP_AUTHORITY=bosai.pref.tochigi.lg.jp       the naming authority: senders and Atom ids are under it
    BOSAI_CAP_SENDER=bosai-{region}@{authority}        the hub's own alerts (default)
    BOSAI_CAP_RELAY_SENDER=jma-relay-{region}@{authority}   its relay of JMA's reports (default)

Unset, the authority is ``bosai-hub.invalid`` (RFC 2606's reserved top-level domain): valid CAP, and plainly
nobody's; the processes that render CAP say so when they start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from streams.delivery.cap import UNOWNED, CapIdentity
from streams.kernel.errors import ConfigError

ENV_AUTHORITY = "BOSAI_CAP_AUTHORITY"
ENV_SENDER = "BOSAI_CAP_SENDER"
ENV_RELAY_SENDER = "BOSAI_CAP_RELAY_SENDER"


def load_cap_identity(env: Mapping[str, str] | None = None) -> CapIdentity:
    """The configured identity; a wrong value is a ConfigError naming the variable and what was expected."""
    env = os.environ if env is None else env
    defaults = CapIdentity()
    identity = CapIdentity(
        authority=env.get(ENV_AUTHORITY, "").strip().lower() or defaults.authority,
        sender_template=env.get(ENV_SENDER, "").strip() or defaults.sender_template,
        relay_template=env.get(ENV_RELAY_SENDER, "").strip() or defaults.relay_template,
    )
    problems = identity.problems()
    if problems:
        raise ConfigError(
            "the environment",
            "; ".join(problems),
            where=f"{ENV_AUTHORITY} / {ENV_SENDER} / {ENV_RELAY_SENDER}",
            expected="a domain you own, e.g. bosai.pref.tochigi.lg.jp, and templates using {region} and {authority}",
        )
    return identity


def unowned_notice(identity: CapIdentity) -> str | None:
    """What to say when the CAP messages are sent under the reserved default authority."""
    if identity.authority != UNOWNED:
        return None
    return (
        f"CAP messages are sent as {identity.sender('<region>')} ({UNOWNED}: nobody's domain); set "
        f"{ENV_AUTHORITY} to a domain you own"
    )
