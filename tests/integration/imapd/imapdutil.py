"""Helpers shared by the imapd tests (imported by name: the module name is
unique, unlike "conftest", so it works when several test folders run at once)."""
from mkhelpers import BIN, BUILD, CORPUS, REPO, free_port, wait_port  # noqa: F401


def message(i, subject=None, body=None, sender="Bob <bob@example.org>"):
    subject = subject or f"test message {i}"
    body = body or f"Body of message {i}.\r\n"
    return (f"From: {sender}\r\nTo: Alice <alice@example.org>\r\nSubject: {subject}\r\n"
            f"Date: Mon, 2{i % 10} Nov 2026 10:00:00 +0000\r\nMessage-ID: <m{i}@example.org>\r\n\r\n{body}").encode()
