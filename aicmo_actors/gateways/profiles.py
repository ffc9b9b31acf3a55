"""Gateways made from the settings' profiles: a sending mailbox's transport, an inbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aicmo_actors.gateways.inbox_source import InboxSource
from aicmo_actors.gateways.transport import MailTransport


def make_transport(profile: Any, mailbox: str) -> MailTransport:
    """The transport of one sending mailbox (one reused SMTP connection each), from a
    transport profile (`settings.TransportProfile`: kind "smtp" or "maildir")."""
    if profile.kind == "smtp":
        from aicmo_actors.gateways.smtp import SmtpTransport

        return SmtpTransport(
            profile.host or "",
            profile.port,
            username=profile.username,
            password=profile.password.get_secret_value() if profile.password else None,
            tls=profile.tls,
            timeout=profile.timeout_s,
            ca_file=profile.ca_file,
            validate_certs=profile.validate_certs,
            local_hostname=profile.helo_name,
        )
    from aicmo_actors.gateways.maildir_outbox import MaildirOutbox

    return MaildirOutbox(profile.path)


def make_inbox(name: str, profile: Any) -> Callable[[], InboxSource]:
    """A factory of the inbox `name` (a new connection each call), from an inbox profile
    (`settings.InboxProfile`: kind "imap" or "maildir")."""
    if profile.kind == "imap":
        from aicmo_actors.gateways.imap import ImapSource

        def imap() -> InboxSource:
            return ImapSource(
                profile.host,
                profile.port,
                profile.username or "",
                profile.password.get_secret_value() if profile.password else "",
                folder=profile.folder,
                tls=profile.tls,
                timeout=profile.timeout_s,
                name=name,
            )

        return imap
    from aicmo_actors.gateways.maildir_inbox import MaildirInbox

    return lambda: MaildirInbox(profile.path, name)
