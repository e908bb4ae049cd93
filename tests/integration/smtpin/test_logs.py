"""smtpin's log read by the tools admins already run on Postfix's: pflogsumm
(received, delivered, rejected, recipients) and fail2ban-regex with the
filter shipped in doc/fail2ban (AUTH failures, by client address)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

for tool in ("pflogsumm", "fail2ban-regex"):
    if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
        pytest.fail(f"{tool} is not installed (tools/install-deps.sh installs it)", pytrace=False)


def grand_total(report, what):
    m = re.search(rf"^\s*(\d+)\s+{what}\b", report, re.M)
    assert m, f"no '{what}' in pflogsumm's report:\n{report}"
    return int(m.group(1))


def test_pflogsumm_and_fail2ban_read_the_log(smtpin):
    for i in range(3):
        cp = smtpin.swaks("--to", "bob@example.org", "--from", f"sender{i}@example.com")
        assert cp.returncode == 0, cp.stdout
    cp = smtpin.swaks("--to", "alice@example.org", "--from", "other@example.net")
    assert cp.returncode == 0, cp.stdout
    assert "550 5.1.1" in smtpin.swaks("--to", "ghost@example.org", "--from", "x@example.com").stdout
    assert "554 5.7.1" in smtpin.swaks("--to", "x@elsewhere.example", "--from", "x@example.com",
                                       "--local-interface", "127.0.0.2").stdout
    for _ in range(2):
        cp = smtpin.swaks("--to", "bob@example.org", "--from", "bob@example.org", "--tls", "--auth", "PLAIN",
                          "--auth-user", "bob", "--auth-password", "wrong", "--local-interface", "127.0.0.2")
        assert "535 5.7.8" in cp.stdout
    smtpin.wait_log(r"(?s)(SASL PLAIN authentication failed.*){2}")
    logfile = smtpin.proc.logfile

    pflogsumm = shutil.which("pflogsumm") or "/usr/sbin/pflogsumm"
    report = subprocess.run([pflogsumm, "--syslog-name=mailkeep", str(logfile)], capture_output=True,
                            text=True, check=True).stdout
    assert grand_total(report, "received") == 4, report
    assert grand_total(report, "delivered") == 4, report
    assert grand_total(report, "rejected") == 2, report
    assert grand_total(report, "recipients") == 2, report  # bob and alice
    assert grand_total(report, "senders") == 4, report
    assert re.search(r"^\s+3\s+bob@example\.org$", report, re.M), report  # recipients by message count
    assert "Relay access denied" in report and "User unknown" in report, report  # reject detail

    cp = subprocess.run(["fail2ban-regex", str(logfile), str(REPO / "doc/fail2ban/mailkeep-smtpin.conf")],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert re.search(r"^Lines: \d+ lines, 0 ignored, 2 matched", cp.stdout, re.M), cp.stdout
    assert re.search(r"127\.0\.0\.2", cp.stdout) or "2 matched" in cp.stdout, cp.stdout
