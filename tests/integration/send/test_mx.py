"""Direct delivery to MX hosts found through a local DNS server (dnsmasq):
preference order, fallback when the best MX is down, IPv6, a domain that
does not exist (bounce), the queue lifetime (bounce after expiry) and the
delay warning; every notification read by Python's email module."""
import re
import socket

import pytest

from mkhelpers import free_port
from sendhelp import parse_dsn, parse_sink_file, wait_until


def mx_setup(mk_factory, sink_factory, dns_factory, extra_records=(), **settings):
    port = free_port()
    records = ["--mx-host=example.com,mx1.example.com,10", "--mx-host=example.com,mx2.example.com,20",
               "--host-record=mx1.example.com,127.0.0.2", "--host-record=mx2.example.com,127.0.0.3",
               *extra_records]
    dns = dns_factory(records)
    mk = mk_factory(smtp_dns_resolver=f"127.0.0.1:{dns.port}", smtp_port=str(port),
                    smtp_tls_security_level="none", inet_protocols="ipv4", **settings)
    mk.useradd("alice")
    mk1 = sink_factory("mx1", host="127.0.0.2", port=port)
    mk2 = sink_factory("mx2", host="127.0.0.3", port=port)
    return mk, mk1, mk2


def test_preference_then_fallback(mk_factory, sink_factory, dns_factory):
    mk, mx1, mx2 = mx_setup(mk_factory, sink_factory, dns_factory)
    mx1.start()
    mx2.start()
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com"])
    wait_until(lambda: len(mx1.files()) == 1, what="delivery to the preferred MX")
    assert mx2.files() == []
    assert re.search(r"to=<carol@example\.com>, relay=mx1\.example\.com\[127\.0\.0\.2\]:\d+, .*status=sent",
                     mk.smtpout_log())
    mx1.stop()
    mk.submit("alice@example.org", ["dave@example.com"])
    wait_until(lambda: len(mx2.files()) == 1, what="delivery to the second MX")
    log = mk.smtpout_log()
    assert re.search(r"connect to mx1\.example\.com\[127\.0\.0\.2\]:\d+: Connection refused", log)
    assert re.search(r"to=<dave@example\.com>, relay=mx2\.example\.com\[127\.0\.0\.3\]:\d+, .*status=sent", log)
    wait_until(lambda: mk.queue_ids() == [])


def test_domain_without_mx_uses_its_address_and_ipv6(mk_factory, sink_factory, dns_factory):
    have_v6 = True
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        have_v6 = False
    if not have_v6:
        pytest.skip("no IPv6 loopback on this machine")
    port = free_port()
    dns = dns_factory(["--host-record=v6only.example.com,::1", "--host-record=plain.example.com,127.0.0.4"])
    mk = mk_factory(smtp_dns_resolver=f"127.0.0.1:{dns.port}", smtp_port=str(port),
                    smtp_tls_security_level="none")
    mk.useradd("alice")
    s4 = sink_factory("v4", host="127.0.0.4", port=port).start()
    s6 = sink_factory("v6", host="[::1]", port=port).start()
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["a@plain.example.com", "b@v6only.example.com"])
    wait_until(lambda: len(s4.files()) == 1 and len(s6.files()) == 1, what="both deliveries")
    log = mk.smtpout_log()
    assert re.search(r"to=<a@plain\.example\.com>, relay=plain\.example\.com\[127\.0\.0\.4\]:\d+", log)
    assert re.search(r"to=<b@v6only\.example\.com>, relay=v6only\.example\.com\[::1\]:\d+", log)


def test_unknown_domain_bounces(mk_factory, sink_factory, dns_factory):
    mk, mx1, mx2 = mx_setup(mk_factory, sink_factory, dns_factory)
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["x@nosuch.example.com"])
    wait_until(lambda: len(mk.messages("alice")) == 1, what="the bounce")
    msg, rcpts = parse_dsn(mk.body("alice", mk.messages("alice")[0][0]))
    assert rcpts[0]["status"] == "5.4.4"
    assert "Host or domain name not found" in rcpts[0]["diagnostic-code"]


def test_lifetime_expiry_bounces(mk_factory, sink_factory, dns_factory):
    mk, mx1, mx2 = mx_setup(mk_factory, sink_factory, dns_factory, maximal_queue_lifetime="4s",
                            minimal_backoff_time="1s", maximal_backoff_time="1s")
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com"])
    wait_until(lambda: len(mk.messages("alice")) == 1, timeout=30, what="the expiry bounce")
    log = mk.smtpout_log()
    assert re.search(r"status=expired, returned to sender", log)
    assert len(re.findall(r"to=<carol@example\.com>.*status=deferred", log)) >= 2  # it was retried
    msg, rcpts = parse_dsn(mk.body("alice", mk.messages("alice")[0][0]))
    assert rcpts[0]["action"] == "failed"
    assert rcpts[0]["status"].startswith("5.")
    assert "Connection refused" in rcpts[0]["diagnostic-code"]
    wait_until(lambda: mk.queue_ids() == [])
    assert mk.fsck().returncode == 0


def test_delay_warning_once(mk_factory, sink_factory, dns_factory):
    mk, mx1, mx2 = mx_setup(mk_factory, sink_factory, dns_factory, delay_warning_time="2s",
                            minimal_backoff_time="1s", maximal_backoff_time="1s")
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com"], headers={"Subject": "slow"})
    wait_until(lambda: len(mk.messages("alice")) == 1, timeout=30, what="the delay warning")
    msg, rcpts = parse_dsn(mk.body("alice", mk.messages("alice")[0][0]))
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    assert rcpts[0]["action"] == "delayed"
    assert rcpts[0]["status"].startswith("4.")
    assert "will-retry-until" in rcpts[0]
    parts = list(msg.iter_parts())
    assert parts[2].get_content_type() == "text/rfc822-headers"
    # then the MX comes back: delivered, and no second warning
    mx1.start()
    wait_until(lambda: len(mx1.files()) == 1, timeout=30, what="delivery after the warning")
    assert b"Subject: slow" in parse_sink_file(mx1.messages()[0])["msg"]
    assert len(mk.messages("alice")) == 1
