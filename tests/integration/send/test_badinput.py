"""Bad input on the way out: 10,000 recipients, malformed addresses, a message
over message_size_limit, and relays that misbehave — one that stops reading
in the middle of DATA, one that never answers the final dot, one that talks
garbage. Those relays are small Python servers written here (no real MTA
misbehaves on request); every other peer is smtp-sink. Nothing is lost: the
message stays queued and goes out once a good relay answers."""
import re
import smtplib
import socket
import threading

import pytest

from mkhelpers import free_port
from sendhelp import client_ctx, parse_sink_file, wait_until


class BadRelay:
    """A TCP server on 127.0.0.1 that plays one of the bad parts."""

    def __init__(self, mode):
        self.mode = mode
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.conns = []
        self.stop = False
        self.sessions = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            self.sessions += 1
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        f = c.makefile("rwb")
        try:
            if self.mode == "garbage":
                f.write(b"HELLO THERE, I AM NOT AN SMTP SERVER\r\n")
                f.flush()
                f.readline()
                return
            f.write(b"220 bad.example ESMTP\r\n")
            f.flush()
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line[:4].upper()
                if cmd in (b"EHLO", b"HELO"):
                    f.write(b"250-bad.example\r\n250 PIPELINING\r\n")
                elif cmd == b"DATA":
                    f.write(b"354 go on\r\n")
                    f.flush()
                    if self.mode == "hang-data":
                        threading.Event().wait(60)  # never reads the message
                        return
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    threading.Event().wait(60)  # "hang-dot": never answers
                    return
                elif cmd == b"RCPT" and self.mode == "garbage-rcpt":
                    f.write(b"2\x00\xff\r\n")
                else:
                    f.write(b"250 ok\r\n")
                f.flush()
        except OSError:
            return

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def bad_relay():
    made = []

    def make(mode):
        r = BadRelay(mode)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_ten_thousand_recipients(mk, sink_factory):
    sink = sink_factory().start()
    mk.configure(relayhost=f"[127.0.0.1]:{sink.port}", smtp_tls_security_level="none",
                 smtpd_recipient_limit="10000", smtpd_user_recipient_rate_limit="0",
                 smtp_destination_recipient_limit="1000")
    mk.start_smtpin().start_smtpout()
    rcpts = [f"r{i}@example.com" for i in range(10000)]
    assert mk.submit("alice@example.org", rcpts, headers={"To": "undisclosed-recipients:;"}) == {}
    wait_until(lambda: mk.queue_ids() == [], timeout=120, what="all delivered")
    got = []
    for m in sink.messages():
        got += [r.split()[0] for r in parse_sink_file(m)["rcpt"]]
    assert len(got) == 10000 and set(got) == {f"<{r}>" for r in rcpts}
    assert len(sink.files()) == 10  # 1,000 recipients per transaction
    assert mk.fsck().returncode == 0


def test_recipient_limit_and_malformed_addresses(mk):
    mk.configure(smtpd_recipient_limit="3")
    mk.start_smtpin()
    c = smtplib.SMTP("127.0.0.1", mk.sub_port, timeout=10)
    c.starttls(context=client_ctx())
    c.login("alice", "secret")
    assert c.docmd("MAIL FROM:<alice@example.org")[0] == 501
    assert c.docmd("MAIL FROM:<alice@example.org>")[0] == 250
    for bad in ("<a@@example.com>", "<@example.com>", "<a b@example.com>", "<a@exa mple.com>", "<x%y@example.com>"):
        code, _ = c.docmd("RCPT TO:" + bad)
        assert code in (501, 553, 554), (bad, code)
    for i in range(3):
        assert c.docmd(f"RCPT TO:<ok{i}@example.com>")[0] == 250
    assert c.docmd("RCPT TO:<one.too.many@example.com>")[0] == 452
    c.quit()


def test_oversize_message_refused_nothing_queued(mk):
    mk.configure(message_size_limit="20000")
    mk.start_smtpin()
    body = "Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 500
    with pytest.raises(smtplib.SMTPException) as e:
        mk.submit("alice@example.org", ["carol@example.com"], body=body)
    assert "552" in str(e.value)
    assert mk.queue_ids() == []
    assert mk.fsck().returncode == 0


@pytest.mark.parametrize("mode,words", [
    ("hang-data", r"conversation with 127\.0\.0\.1\[127\.0\.0\.1\] timed out while sending message body"),
    ("hang-dot", r"conversation with 127\.0\.0\.1\[127\.0\.0\.1\] timed out while sending end of data"),
    ("garbage", r"host 127\.0\.0\.1\[127\.0\.0\.1\] talked to me nonsense while receiving the initial "
                r"server greeting"),
    ("garbage-rcpt", r"host 127\.0\.0\.1\[127\.0\.0\.1\] talked to me nonsense while sending MAIL FROM"),
])
def test_bad_relays_defer_then_deliver(mk, sink_factory, bad_relay, mode, words):
    bad = bad_relay(mode)
    mk.configure(relayhost=f"[127.0.0.1]:{bad.port}", smtp_tls_security_level="none",
                 smtp_data_xfer_timeout="2s", smtp_data_done_timeout="2s", smtp_rcpt_timeout="2s",
                 smtp_helo_timeout="2s")
    mk.start_smtpin().start_smtpout()
    # big enough that the socket buffers fill when the relay stops reading
    body = "From: alice@example.org\r\nSubject: big\r\n\r\n" + ("y" * 998 + "\r\n") * 8000
    mk.configure(message_size_limit="20000000")
    mk.submit("alice@example.org", ["carol@example.com"], body=body)
    wait_until(lambda: re.search(r"status=deferred \(" + words, mk.smtpout_log()), timeout=30,
               what=f"the deferral ({mode})")
    assert len(mk.queue_ids()) == 1
    # a good relay now: the message goes, whole
    sink = sink_factory().start()
    mk.stop_smtpout()
    mk.configure(relayhost=f"[127.0.0.1]:{sink.port}")
    mk.mk("queue", "flush")
    mk.start_smtpout()
    wait_until(lambda: mk.queue_ids() == [], timeout=30, what="delivery to the good relay")
    assert len(sink.files()) == 1
    msg = parse_sink_file(sink.messages()[0])["msg"]
    assert msg.count(b"y" * 998) == 8000
    assert mk.fsck().returncode == 0
