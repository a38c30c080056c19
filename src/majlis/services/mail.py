"""Reminder emails through any SMTP server (aiosmtplib)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from majlis.types import Space

__all__ = ["Mailer", "SmtpSettings", "reminder_email"]

_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool  # smtps://: TLS from the first byte
    start_tls: bool  # smtp:// upgraded with STARTTLS (required, not opportunistic)
    sender: str

    @classmethod
    def parse(cls, url: str, sender: str, starttls: bool) -> SmtpSettings:
        """From a URL config.py has already checked (smtp[s]://user:pass@host:port)."""
        parts = urlsplit(url)
        tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname or "",
            port=parts.port or (465 if tls else 587 if starttls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=tls,
            start_tls=starttls,
            sender=sender,
        )


def reminder_email(sender: str, to: str, space: Space, link: str) -> EmailMessage:
    """'<title> has started', with the link to listen."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    # A title may hold line breaks (clean_text keeps them), which a header must not: they
    # would end it. Its words on one line; the email package encodes and folds the rest.
    message["Subject"] = "Live now: " + " ".join(space.title.split())
    message.set_content(
        f"{space.title}\n\nThe space you asked to be reminded of has started. Listen at:\n{link}\n"
    )
    return message


class Mailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    @property
    def sender(self) -> str:
        return self._settings.sender

    async def send(self, message: EmailMessage) -> None:
        """One attempt; raises on any failure (the caller retries)."""
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.hostname,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.use_tls,
            start_tls=s.start_tls if not s.use_tls else None,
            timeout=_TIMEOUT_S,
        )
