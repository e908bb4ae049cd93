"""Backup MX: two mailkeep instances on one machine (the primary on 127.0.0.2,
the backup on 127.0.0.3, the same port), named as MX 10 and MX 20 of
example.com by a local dnsmasq. The primary is down: the backup accepts mail
for valid recipients only (relay_recipient_maps), queues it, and tries the
primary; the primary comes up: everything arrives, none lost, none twice."""
import re
import smtplib
import time

from mkhelpers import free_port
from sendhelp import wait_until

N = 60


def test_primary_down_backup_queues_primary_up_all_delivered(mk_factory, dns_factory, tmp_path):
    port = free_port()
    dns = dns_factory(["--mx-host=example.com,mx1.example.com,10", "--mx-host=example.com,mx2.example.com,20",
                       "--host-record=mx1.example.com,127.0.0.2", "--host-record=mx2.example.com,127.0.0.3"])
    resolver = f"127.0.0.1:{dns.port}"
    common = dict(listen_port=port, dns_resolver=resolver, mydestination="localhost", lmtp_listen="")
    primary = mk_factory("primary", host="127.0.0.2", myhostname="mx1.example.com",
                         **{**common, "mydestination": "example.com"})
    primary.useradd("bob")
    primary.useradd("carol")
    rcpts = tmp_path / "relay_recipients"
    rcpts.write_text("# the primary's users\nbob@example.com OK\ncarol@example.com OK\n")
    backup = mk_factory("backup", host="127.0.0.3", myhostname="mx2.example.com", relay_domains="example.com",
                        relay_recipient_maps=str(rcpts), smtp_dns_resolver=resolver, smtp_port=str(port),
                        smtp_tls_security_level="may", minimal_backoff_time="1s", maximal_backoff_time="2s",
                        maximal_queue_lifetime="7d", **common)
    backup.start_smtpin().start_smtpout()

    # the primary is down: a sender falls back to the backup
    sent = []
    c = smtplib.SMTP("127.0.0.3", port, timeout=20)
    c.ehlo("sender.example.net")
    for i in range(N):
        to = "bob@example.com" if i % 2 == 0 else "carol@example.com"
        msgid = f"bmx-{i}@sender.example.net"
        c.sendmail(f"s{i}@sender.example.net", [to],
                   f"From: s{i}@sender.example.net\r\nTo: {to}\r\nMessage-ID: <{msgid}>\r\n"
                   f"Subject: {i}\r\n\r\nbody {i}\r\n")
        sent.append((to.split("@")[0], msgid))
    # an unknown recipient is refused at RCPT: nothing to bounce later
    code, msg = c.mail("x@sender.example.net")
    code, msg = c.rcpt("nobody@example.com")
    assert code == 550 and b"User unknown in relay recipient table" in msg
    c.rset()
    # and a domain we are not backup for is no relay
    code, msg = c.rcpt("someone@elsewhere.example")
    assert code in (503, 554)
    c.quit()

    wait_until(lambda: re.search(r"connect to mx1\.example\.com\[127\.0\.0\.2\]:\d+: Connection refused",
                                 backup.smtpout_log()), what="the backup trying the primary")
    time.sleep(1.5)
    assert len(backup.queue_ids()) == N
    assert "relay=mx2" not in backup.smtpout_log()  # never to itself

    # the primary comes back
    primary.start_smtpin()
    wait_until(lambda: backup.queue_ids() == [], timeout=60, interval=0.5, what="the backup's queue drained")
    got = {}
    for user in ("bob", "carol"):
        for uid, _, _, meta in primary.messages(user):
            m = re.search(rb"Message-ID: <([^>]+)>", primary.body(user, uid))
            got.setdefault((user, m.group(1).decode()), 0)
            got[(user, m.group(1).decode())] += 1
    assert set(got) == set(sent), f"lost: {set(sent) - set(got)}"
    assert all(n == 1 for n in got.values()), {k: n for k, n in got.items() if n > 1}
    log = backup.smtpout_log()
    assert len(re.findall(r"relay=mx1\.example\.com\[127\.0\.0\.2\]:\d+, .*status=sent", log)) == N
    assert backup.fsck().returncode == 0 and primary.fsck().returncode == 0
