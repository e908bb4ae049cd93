"""A full Postfix as the relayhost, the way a residential set-up sends through a
provider's smarthost: STARTTLS (encrypt, and verify against its certificate
by name), SMTP AUTH with the password from smtp_sasl_password_maps (Cyrus
Postfix asks a Dovecot auth service), Postfix then relaying to an smtp-sink."""
import os
import re
import signal
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mkhelpers import free_port, wait_port
from sendhelp import parse_sink_file, wait_until


class Postfix:
    def __init__(self, sink_port):
        # Postfix's daemons run as "postfix": a tree they can walk
        root = Path(tempfile.mkdtemp(prefix="mk-pfrelay-"))
        root.chmod(0o755)
        self.root = root
        self.dir = root / "postfix"
        self.dir.mkdir()
        self.port = free_port()
        q = root / "pfqueue"
        q.mkdir()
        (root / "pfdata").mkdir()
        shutil.chown(root / "pfdata", "postfix")
        # Postfix asks a Dovecot auth service (smtpd_sasl_type = dovecot) for
        # the password: Debian's Cyrus SASL ignores cyrus_sasl_config_path
        self.auth_port = free_port()
        dv = root / "dovecot"
        (dv / "run").mkdir(parents=True)
        (dv / "state").mkdir()
        (dv / "users").write_text("relayuser@relay.example.com:{PLAIN}relaypass\n")
        (dv / "dovecot.conf").write_text(f"""
instance_name = mk-pfrelay-{self.auth_port}
base_dir = {dv}/run
state_dir = {dv}/state
log_path = {dv}/dovecot.log
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dv}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {self.auth_port}
  }}
}}
""")
        self.cert, self.key = root / "relay.crt", root / "relay.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "30", "-subj", "/CN=relay.example.com", "-addext",
                        "subjectAltName=DNS:relay.example.com", "-keyout", str(self.key),
                        "-out", str(self.cert)], check=True, capture_output=True)
        self.key.chmod(0o600)
        self.dovecot = subprocess.Popen(["dovecot", "-F", "-c", str(dv / "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        wait_port(self.auth_port, timeout=20, proc=self.dovecot)
        master = Path("/etc/postfix/master.cf").read_text().splitlines()
        out = []
        for line in master:
            f = line.split()
            if line.startswith("#") or not f:
                continue
            if line.startswith(" ") or line.startswith("\t"):
                out.append(line)
                continue
            if f[0] == "smtp" and f[1] == "inet":
                f[0] = f"127.0.0.1:{self.port}"
            if len(f) >= 8 and f[4] == "y":
                f[4] = "n"
            out.append("  ".join(f[:8]) + ("  " + " ".join(f[8:]) if len(f) > 8 else ""))
        (self.dir / "master.cf").write_text("\n".join(out) + "\n")
        (self.dir / "main.cf").write_text(f"""
compatibility_level = 3.6
queue_directory = {q}
data_directory = {root}/pfdata
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.example.com
mydomain = example.com
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.9/32
relayhost = [127.0.0.1]:{sink_port}
smtpd_tls_cert_file = {self.cert}
smtpd_tls_key_file = {self.key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{self.auth_port}
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions =
alias_maps =
alias_database =
maillog_file = {root}/postfix.log
maillog_file_prefixes = /tmp, /var, /dev/stdout, {root}
smtputf8_enable = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
""")
        self.log = root / "postfix.log"
        cmd = " ".join(["postfix", "-c", str(self.dir), "start"])
        cp = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        wait_port(self.port, timeout=20)

    def logtext(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self):
        subprocess.run(["postfix", "-c", str(self.dir), "stop"], capture_output=True, timeout=60)
        if self.dovecot.poll() is None:
            os.killpg(self.dovecot.pid, signal.SIGTERM)
            self.dovecot.wait(20)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def postfix_relay(sink_factory):
    sink = sink_factory().start()
    pf = Postfix(sink.port)
    yield pf, sink
    pf.stop()


def make_mk(mk_factory, pf, dns_factory, password="relaypass", **settings):
    dns = dns_factory(["--host-record=relay.example.com,127.0.0.1"])
    pw = Path(tempfile.mkdtemp(prefix="mk-sasl-")) / "sasl_passwd"
    relayhost = f"[relay.example.com]:{pf.port}"
    pw.write_text(f"# provider\n{relayhost} relayuser@relay.example.com:{password}\n")
    pw.chmod(0o600)
    base = dict(relayhost=relayhost, smtp_sasl_auth_enable="yes", smtp_sasl_password_maps=f"texthash:{pw}",
                smtp_tls_security_level="encrypt", smtp_dns_resolver=f"127.0.0.1:{dns.port}")
    base.update(settings)
    mk = mk_factory(**base)
    mk.useradd("alice")
    return mk


def test_relay_with_tls_and_auth(mk_factory, postfix_relay, dns_factory):
    pf, sink = postfix_relay
    mk = make_mk(mk_factory, pf, dns_factory)
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com", "dave@example.net.invalid"])
    wait_until(lambda: len(sink.files()) == 1, timeout=30, what="the message through Postfix")
    env = parse_sink_file(sink.messages()[0])
    assert sorted(r.split()[0] for r in env["rcpt"]) == ["<carol@example.com>", "<dave@example.net.invalid>"]
    pflog = pf.logtext()
    assert re.search(r"sasl_method=PLAIN, sasl_username=relayuser@relay\.example\.com", pflog), pflog
    assert re.search(r"Anonymous TLS connection established from \S+: TLSv1\.[23]", pflog), pflog
    log = mk.smtpout_log()
    assert re.search(r"TLS connection established to relay\.example\.com\[127\.0\.0\.1\]:\d+: TLSv1\.[23]", log)
    assert re.search(r"to=<carol@example\.com>, relay=relay\.example\.com\[127\.0\.0\.1\]:\d+, .*status=sent "
                     r"\(250 2\.0\.0 Ok: queued as", log)
    wait_until(lambda: mk.queue_ids() == [])


def test_verify_against_the_relays_certificate(mk_factory, postfix_relay, dns_factory):
    pf, sink = postfix_relay
    mk = make_mk(mk_factory, pf, dns_factory, smtp_tls_security_level="verify", smtp_tls_CAfile=str(pf.cert))
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com"])
    wait_until(lambda: len(sink.files()) == 1, timeout=30, what="delivery with a verified certificate")
    assert "Verified TLS connection established to relay.example.com" in mk.smtpout_log()


def test_verify_fails_with_another_ca_and_nothing_is_sent(mk_factory, postfix_relay, dns_factory):
    pf, sink = postfix_relay
    mk = make_mk(mk_factory, pf, dns_factory, smtp_tls_security_level="verify")  # the system's CAs
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com"])
    wait_until(lambda: re.search(r"status=deferred \(Server certificate not verified", mk.smtpout_log()),
               what="the deferral")
    assert sink.files() == []
    assert "sasl_username" not in pf.logtext()  # the password was never sent


def test_wrong_password_defers(mk_factory, postfix_relay, dns_factory):
    pf, sink = postfix_relay
    mk = make_mk(mk_factory, pf, dns_factory, password="wrong")
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com"])
    wait_until(lambda: re.search(r"status=deferred \(SASL authentication failed; server relay\.example\.com"
                                 r"\[127\.0\.0\.1\] said: 535", mk.smtpout_log()), what="the deferral")
    assert sink.files() == []
    assert len(mk.queue_ids()) == 1
