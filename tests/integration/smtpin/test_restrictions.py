"""Restrictions in the order the admin writes them, DNS lists answered by a
local dnsmasq started here, greylisting (built in and over the policy
protocol), postscreen's DNSBL scoring. Clients outside mynetworks connect
from 127.0.0.2..127.0.0.5; mynetworks is 127.0.0.1/32."""
import re
import subprocess
import time

import pytest

from mkhelpers import free_port  # noqa


@pytest.fixture
def dns(tmp_path):
    """A dnsmasq on a free port answering the test's DNS lists."""
    port = free_port()
    records = {
        "2.0.0.127.zen.example": "127.0.0.2",      # client 127.0.0.2 is on the block list
        "5.0.0.127.zen.example": "127.0.0.10",     # client 127.0.0.5 too, with another code
        "3.0.0.127.list.dnswl.example": "127.0.5.2",  # client 127.0.0.3 is on the allow list
        "2.0.0.127.list.dnswl.example": "127.0.5.3",
        "spammer.example.rhsbl.example": "127.0.0.2",
        "bad.example": "127.0.0.4",                # PTR of 127.0.0.4
        "bad.example.rhsbl.example": "127.0.0.2",
        "good.example": "192.0.2.1",
    }
    argv = ["dnsmasq", "-k", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
            "--no-hosts", "--conf-file=/dev/null", "--pid-file=", "--local=/example/", "--log-facility=-"]
    argv += [f"--host-record={name},{ip}" for name, ip in records.items()]
    log = open(tmp_path / "dnsmasq.log", "wb")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(0.3)
    assert p.poll() is None, (tmp_path / "dnsmasq.log").read_text()
    yield f"127.0.0.1:{port}"
    p.terminate()
    p.wait(10)


def rcpt_reply(s, source, rcpt="bob@example.org", sender="a@good.example", helo="client.good.example"):
    cp = s.swaks("--to", rcpt, "--from", sender, "--helo", helo, "--local-interface", source,
                 "--quit-after", "RCPT")
    # the first reply after the last command swaks sent before QUIT
    lines = cp.stdout.splitlines()
    sent = [i for i, l in enumerate(lines) if re.match(r"^ [-~*]*> (?!QUIT)", l)]
    for l in lines[sent[-1] + 1:] if sent else []:
        m = re.match(r"^<[-~*]*\s+(\d{3}[ -].*)$", l)
        if m:
            return m.group(1)
    return cp.stdout


def make(smtpin_factory, **settings):
    s = smtpin_factory(**settings)
    s.useradd("bob")
    return s.start()


def test_rbl_and_dnswl(smtpin_factory, dns):
    s = make(smtpin_factory, dns_resolver=dns,
             smtpd_recipient_restrictions="permit_dnswl_client list.dnswl.example=127.0.5.[2..3], "
                                          "reject_rbl_client zen.example")
    r = rcpt_reply(s, "127.0.0.2")  # on both lists: the allow list comes first and wins
    assert r.startswith("250"), r
    r = rcpt_reply(s, "127.0.0.5")
    assert r.startswith("554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using zen.example"), r
    assert rcpt_reply(s, "127.0.0.4").startswith("250")
    s.restart(smtpd_recipient_restrictions="reject_rbl_client zen.example=127.0.0.2, permit")
    assert rcpt_reply(s, "127.0.0.2").startswith("554 5.7.1")
    assert rcpt_reply(s, "127.0.0.5").startswith("250")  # 127.0.0.10 does not match the pattern
    assert re.search(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]: 554 5\.7\.1 Service unavailable; "
                     r"Client host \[127\.0\.0\.2\] blocked using zen\.example; from=<a@good\.example> "
                     r"to=<bob@example\.org> proto=ESMTP helo=<client\.good\.example>", s.log())


def test_rhsbl(smtpin_factory, dns):
    s = make(smtpin_factory, dns_resolver=dns,
             smtpd_sender_restrictions="reject_rhsbl_sender rhsbl.example",
             smtpd_client_restrictions="reject_rhsbl_client rhsbl.example")
    assert rcpt_reply(s, "127.0.0.3", sender="x@spammer.example").startswith("554 5.7.1 Service unavailable; "
                                                                               "Sender address [spammer.example]")
    assert rcpt_reply(s, "127.0.0.3").startswith("250")
    r = rcpt_reply(s, "127.0.0.4")  # PTR bad.example, listed
    assert r.startswith("554 5.7.1 Service unavailable; Client host [bad.example] blocked using rhsbl.example"), r


def test_unknown_domains(smtpin_factory, dns):
    s = make(smtpin_factory, dns_resolver=dns, smtpd_sender_restrictions="reject_unknown_sender_domain",
             smtpd_recipient_restrictions="reject_unknown_recipient_domain")
    assert rcpt_reply(s, "127.0.0.3", sender="a@nowhere.example").startswith("553 5.1.8")
    assert rcpt_reply(s, "127.0.0.3", sender="a@good.example").startswith("250")
    r = rcpt_reply(s, "127.0.0.1", rcpt="x@nowhere.example")
    assert r.startswith("550 5.1.2 <x@nowhere.example>: Recipient address rejected: Domain not found"), r


def test_helo_and_fqdn_restrictions(smtpin_factory):
    s = make(smtpin_factory, smtpd_helo_restrictions="reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname",
             smtpd_sender_restrictions="reject_non_fqdn_sender",
             smtpd_recipient_restrictions="reject_non_fqdn_recipient")
    assert rcpt_reply(s, "127.0.0.3", helo="bad_name!").startswith("501 5.5.2 <bad_name!>: Helo command rejected: "
                                                                    "Invalid name")
    assert rcpt_reply(s, "127.0.0.3", helo="localhost").startswith("504 5.5.2 <localhost>: Helo command rejected: "
                                                                    "need fully-qualified hostname")
    assert rcpt_reply(s, "127.0.0.3", helo="[127.0.0.3]").startswith("250")
    assert rcpt_reply(s, "127.0.0.3", sender="a@localhost").startswith("504 5.5.2 <a@localhost>: Sender address "
                                                                        "rejected: need fully-qualified address")
    # smtpd_delay_reject = no: the HELO is refused at HELO
    s.restart(smtpd_delay_reject="no")
    cp = s.swaks("--to", "bob@example.org", "--helo", "localhost", "--local-interface", "127.0.0.3",
                 "--quit-after", "HELO")
    assert re.search(r"<\*\*\s+504 5\.5\.2 <localhost>", cp.stdout), cp.stdout


def test_client_access_cidr_and_order(smtpin_factory, tmp_path):
    table = tmp_path / "client_access"
    table.write_text("# test table\n127.0.0.4/32 REJECT go away\n127.0.0.5 DEFER try later\n"
                     "127.0.0.0/8 DUNNO\n")
    s = make(smtpin_factory, smtpd_client_restrictions=f"check_client_access cidr:{table}")
    assert rcpt_reply(s, "127.0.0.4").startswith("554 5.7.1 <unknown[127.0.0.4]>: Client host rejected: go away")
    assert rcpt_reply(s, "127.0.0.5").startswith("450 4.7.1")
    assert rcpt_reply(s, "127.0.0.3").startswith("250")
    # order matters: permit_mynetworks before reject lets 127.0.0.1 in, not the others
    s.restart(smtpd_client_restrictions="", smtpd_recipient_restrictions="permit_mynetworks, reject")
    assert rcpt_reply(s, "127.0.0.1").startswith("250")
    assert rcpt_reply(s, "127.0.0.3").startswith("554 5.7.1")
    s.restart(smtpd_recipient_restrictions="reject, permit_mynetworks")
    assert rcpt_reply(s, "127.0.0.1").startswith("554 5.7.1")


def test_reject_unauth_pipelining(smtpin_factory, raw):
    s = make(smtpin_factory, smtpd_data_restrictions="reject_unauth_pipelining")
    r = raw(s.port, source="127.0.0.3")
    r.reply()
    r.send("HELO c.example.com\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
    replies = [r.reply() for _ in range(4)]
    assert replies[3].startswith("503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining")
    cp = s.swaks("--to", "bob@example.org", "--pipeline", "--local-interface", "127.0.0.3")
    assert cp.returncode == 0, cp.stdout  # EHLO clients may pipeline


def test_builtin_greylisting(smtpin_factory):
    s = make(smtpin_factory, smtpd_recipient_restrictions="permit_mynetworks, check_greylist",
             greylist_delay="2s")
    args = ("--to", "bob@example.org", "--from", "a@good.example", "--local-interface", "127.0.0.3")
    cp = s.swaks(*args)
    assert re.search(r"450 4\.7\.1 <bob@example\.org>: Recipient address rejected: Greylisted", cp.stdout)
    cp = s.swaks(*args)
    assert "450 4.7.1" in cp.stdout  # too early
    time.sleep(2.2)
    cp = s.swaks(*args)
    assert cp.returncode == 0, cp.stdout
    assert len(s.messages("bob")) == 1
    # mynetworks is not greylisted
    assert s.swaks("--to", "bob@example.org", "--from", "n@new.example").returncode == 0


def test_greylist_over_policy_protocol(smtpin_factory):
    s = make(smtpin_factory, greylist_delay="2s")
    # smtpin asks its own policy service, as a Postfix MX would
    s.restart(smtpd_recipient_restrictions=f"check_policy_service inet:127.0.0.1:{s.policy_port}")
    args = ("--to", "bob@example.org", "--from", "p@good.example", "--local-interface", "127.0.0.3")
    cp = s.swaks(*args)
    assert re.search(r"450 4\.7\.1 <bob@example\.org>: Recipient address rejected: Greylisted", cp.stdout), cp.stdout
    time.sleep(2.2)
    assert s.swaks(*args).returncode == 0
    assert "policy: greylisted client=127.0.0.3" in s.log()


def test_policy_unreachable_accepts(smtpin_factory):
    dead = free_port()
    s = make(smtpin_factory, smtpd_recipient_restrictions=f"check_policy_service inet:127.0.0.1:{dead}")
    cp = s.swaks("--to", "bob@example.org", "--local-interface", "127.0.0.3")
    assert cp.returncode == 0, cp.stdout
    assert f"warning: problem talking to server inet:127.0.0.1:{dead}" in s.log()


def test_postscreen_dnsbl_weights(smtpin_factory, dns, raw):
    s = make(smtpin_factory, dns_resolver=dns, postscreen_greet_wait="1s", postscreen_dnsbl_action="enforce",
             postscreen_dnsbl_sites="zen.example*3 list.dnswl.example=127.0.[0..255].[2..3]*-2",
             postscreen_dnsbl_threshold="2")
    # 127.0.0.5: zen only, score 3 >= 2: every RCPT is refused
    r = raw(s.port, source="127.0.0.5")
    assert r.reply().startswith("220-")
    r.cmd("EHLO c.example.com")
    r.cmd("MAIL FROM:<a@example.com>")
    reply = r.cmd("RCPT TO:<bob@example.org>")
    assert reply.startswith("550 5.7.1 Service unavailable; client [127.0.0.5] blocked using zen.example"), reply
    assert re.search(r"DNSBL rank 3 for \[127\.0\.0\.5\]:\d+", s.log())
    # 127.0.0.2: zen (3) and the allow list (-2): score 1 < 2, passes
    r = raw(s.port, source="127.0.0.2")
    r.reply()
    r.cmd("EHLO c.example.com")
    r.cmd("MAIL FROM:<a@example.com>")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("250")
    s.restart(postscreen_dnsbl_action="drop")
    r = raw(s.port, source="127.0.0.5")
    reply = r.reply()
    assert reply.splitlines()[-1].startswith("521 5.7.1"), reply
    assert r.closed()
