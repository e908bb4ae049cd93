"""One IPv6 /64 is one client (issue 13.4: addresses were compared exactly,
so one /64 counted as 2^64 clients), and its connections to SMTP and IMAP are
counted together. Runs smtpin, imapd and the clients in a network namespace
of their own (unshare -n) where two /64s are routed to lo, so that real
sockets come from many addresses of one /64."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mkhelpers import BIN, free_port

HERE = Path(__file__).resolve().parent


def namespaces_work():
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    cp = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True)
    return cp.returncode == 0


def test_one_slash_64_is_one_client_across_smtp_and_imap(instance):
    if not namespaces_work():
        pytest.fail("unshare -n does not work here (needs root or user namespaces)", pytrace=False)
    smtp, imap = free_port(), free_port()
    instance.write_conf(smtpd_listen=f"[::1]:{smtp}", lmtp_listen="", imapd_listen=f"[::1]:{imap}",
                        imapd_tls_listen="", mynetworks="127.0.0.1/32",
                        smtpd_client_connection_count_limit="5", imap_client_connection_count_limit="5",
                        smtpd_client_connection_rate_limit="0", imap_client_connection_rate_limit="0",
                        smtpd_timeout="30s")
    cp = subprocess.run(["unshare", "-n", "python3", str(HERE / "v6probe.py"), str(BIN), str(instance.conf),
                         str(smtp), str(imap)], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = json.loads(cp.stdout.strip().splitlines()[-1])
    got = {(svc, addr): first for svc, addr, first in out["results"]}
    # five connections of 2001:db8:5:6::/64 are served, over SMTP and IMAP together ...
    for i in range(1, 4):
        assert got[("smtp", f"2001:db8:5:6::{i}")].startswith("220"), got
    for i in range(1, 3):
        assert got[("imap", f"2001:db8:5:6:{i}::{i}")].startswith("* OK"), got
    # ... the sixth, from yet another address of that /64, is refused
    assert got[("imap", "2001:db8:5:6:3::3")] in ("", "* BYE Too many connections from your network, try again "
                                                      "later"), got
    # the next /64 is another client
    assert got[("smtp", "2001:db8:5:7::1")].startswith("220"), got
    # mailkeep status shows the /64
    assert re.search(r"^  2001:db8:5:6::/64\s+3\s+2\s", out["status"], re.M), out["status"]
    log = Path(f"{instance.conf}.mailkeep-imapd.log").read_text()
    assert re.search(r"\[2001:db8:5:6:3::3\]: connection concurrency limit exceeded: 6 from 2001:db8:5:6::/64", log), log
