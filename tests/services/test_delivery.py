"""The pieces of reminder delivery that need no server: SMTP settings from the URL, the
webhook's signature, and the backoff's bounds."""

from __future__ import annotations

import hashlib
import hmac
import random
from email import message_from_bytes, policy

from majlis.services.mail import SmtpSettings, reminder_email
from majlis.services.retrying import Backoff
from majlis.services.webhook import signature
from majlis.types import Space, SpaceState, Visibility


def test_smtp_settings_from_the_url() -> None:
    s = SmtpSettings.parse("smtp://us%40er:p%3Ass@mail.example.org:2525", "a@b.org", True)
    assert (s.hostname, s.port, s.username, s.password) == (
        "mail.example.org",
        2525,
        "us@er",
        "p:ss",
    )
    assert (s.use_tls, s.start_tls, s.sender) == (False, True, "a@b.org")
    assert SmtpSettings.parse("smtps://mail.example.org", "a@b.org", False).port == 465
    assert SmtpSettings.parse("smtp://mail.example.org", "a@b.org", True).port == 587
    anonymous = SmtpSettings.parse("smtp://mail.example.org", "a@b.org", False)
    assert (anonymous.port, anonymous.username, anonymous.password) == (25, None, None)


def test_the_signature_covers_the_timestamp_and_the_body() -> None:
    body = b'{"event":"space_started"}'
    mac = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("k" * 16, "1700000000", body) == f"sha256={mac}"
    assert signature("k" * 16, "1700000001", body) != f"sha256={mac}"


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    backoff = Backoff(first_s=2.0, attempts=5, cap_s=10.0)
    rng = random.Random(1)
    for failures, ceiling in ((1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)):
        waits = [backoff.delay(failures, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # jittered across the whole range


def test_a_title_with_line_breaks_stays_in_its_subject() -> None:
    title = "مجلس الليلة\nBcc: someone@example.org"
    space = Space("s1", "h1", title, "", SpaceState.LIVE, Visibility.PUBLIC, 1.0, started_at=1.0)
    raw = bytes(reminder_email("a@b.org", "c@d.org", space, "https://x/spaces/s1"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Live now: مجلس الليلة Bcc: someone@example.org"
    assert parsed["Bcc"] is None
    assert title in parsed.get_body().get_content()  # type: ignore[union-attr]
