"""Helpers for the LDAP directory tests: a real slapd on 127.0.0.1 with the
seed's directory shape, and a small C driver (ldap-probe.c) that opens
mailkeep's LDAP backend exactly as the daemons do (index/dir_ldap.h) and
answers one command per line.

slapd runs as the current user from a generated slapd.conf under tmp_path
(mdb backend, schemas core/cosine/inetorgperson/nis from /etc/ldap/schema plus
mailalias.schema for mailAlternateAddress), data loaded with slapadd.
"""
import base64
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path



sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mkhelpers import BIN, BUILD, REPO, free_port, wait_port  # noqa: E402

HERE = Path(__file__).resolve().parent
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "rootsecret"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PW = "readersecret"
PEOPLE = f"ou=people,{SUFFIX}"

# name -> (cn, password, scheme, uidNumber, extra LDIF lines)
USERS = {
    "bob": ("Bob Kelso", "bobs-secret", "SSHA", 10001,
            ["mail: bob@example.org", "objectClass: qmailUser", "mailAlternateAddress: robert@example.org",
             "mailAlternateAddress: kelso@example.net"]),
    "alice": ("Alice Liddell", "wonder land!", "SSHA512", 10002, ["mail: alice@example.org"]),
    "dave": ("Dave Bowman", "open the pod bay doors", "CRYPT", 10003, ["mail: dave@example.org"]),
    "sam": ("Sam Sha", "sha256 pass", "SSHA256", 10004, ["mail: sam@example.org"]),
    # an address with every character RFC 4515 escapes (but NUL): found only by itself
    "carol": ("Carol Star", "carols-secret", "SSHA", 10005, ["mail: c*rol(x)\\y@example.org"]),
    # two entries sharing an address: the directory is ambiguous for it
    "eve1": ("Eve One", "eve-secret", "SSHA", 10006, ["mail: eve1@example.org", "objectClass: qmailUser",
                                                      "mailAlternateAddress: shared@example.org"]),
    "eve2": ("Eve Two", "eve-secret", "SSHA", 10007, ["mail: eve2@example.org", "objectClass: qmailUser",
                                                      "mailAlternateAddress: shared@example.org"]),
}


def ssha(password, algo="sha1", salt=None):
    salt = salt if salt is not None else os.urandom(8)
    h = hashlib.new(algo, password.encode() + salt).digest()
    tag = {"sha1": "SSHA", "sha256": "SSHA256", "sha512": "SSHA512"}[algo]
    return "{%s}%s" % (tag, base64.b64encode(h + salt).decode())


def hash_password(password, scheme):
    if scheme == "SSHA":
        # made by slappasswd, as the seed's were
        return subprocess.run(["/usr/sbin/slappasswd", "-h", "{SSHA}", "-s", password],
                              capture_output=True, text=True, check=True).stdout.strip()
    if scheme == "SSHA256":
        return ssha(password, "sha256")
    if scheme == "SSHA512":
        return ssha(password, "sha512")
    if scheme == "CRYPT":
        out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                             capture_output=True, text=True, check=True).stdout.strip()
        return "{CRYPT}" + out
    raise ValueError(scheme)


def user_ldif(name, cn, password, scheme, number, extra):
    sn = cn.split()[-1]
    lines = [f"dn: cn={cn},{PEOPLE}", "objectClass: inetOrgPerson", "objectClass: posixAccount",
             f"cn: {cn}", f"sn: {sn}", f"uid: {name}", f"uidNumber: {number}", f"gidNumber: {number}",
             f"homeDirectory: /home/{name}", f"userPassword: {hash_password(password, scheme)}"]
    oc = [x for x in extra if x.startswith("objectClass:")]
    rest = [x for x in extra if not x.startswith("objectClass:")]
    return "\n".join(lines[:3] + oc + lines[3:] + rest) + "\n\n"


def base_ldif(people=True):
    out = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n",
           f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
           f"cn: reader\nuserPassword: {hash_password(READER_PW, 'SSHA')}\n\n"]
    if not people:
        return "".join(out)
    out.append(f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n")
    for name, (cn, pw, scheme, number, extra) in USERS.items():
        out.append(user_ldif(name, cn, pw, scheme, number, extra))
    return "".join(out)


class Slapd:
    """A slapd of our own on 127.0.0.1:port, stopped and started by pid."""

    def __init__(self, root: Path, ldif=None, tls=False):
        """ldif: the entries under the suffix (default: base_ldif(), the seed's shape).
        tls: also serve STARTTLS and ldaps:// (port self.tls_port) with a certificate
        for 127.0.0.1 from a CA of its own (self.ca)."""
        self.root = root
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}/"
        self.db = root / "db"
        self.db.mkdir(parents=True)
        self.tls_port = free_port() if tls else None
        tls_conf = self.make_tls() if tls else ""
        self.conf = root / "slapd.conf"
        self.proc = None
        self.starts = 0
        schemas = "".join(f"include /etc/ldap/schema/{s}.schema\n"
                          for s in ("core", "cosine", "inetorgperson", "nis"))
        self.conf.write_text(
            schemas + f"include {HERE / 'mailalias.schema'}\n"
            f"pidfile {root / 'slapd.pid'}\nargsfile {root / 'slapd.args'}\n"
            "modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload pw-sha2\n" + tls_conf +
            # as permissive as "some servers": a DN with an empty password binds anonymously
            "allow bind_anon_dn\n"
            # a plain search gets at most 500 entries; a paged one (RFC 2696) all of them
            "sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited\n"
            "database mdb\nmaxsize 10485760\n"
            f'suffix "{SUFFIX}"\nrootdn "{ROOT_DN}"\nrootpw {ROOT_PW}\ndirectory {self.db}\n'
            "index objectClass eq\nindex mail,uid,mailAlternateAddress eq\n"
            # the reader may read password hashes; users may authenticate; nobody else sees them
            "access to attrs=userPassword\n"
            f'  by dn.exact="{READER_DN}" read\n  by self write\n  by anonymous auth\n  by * none\n'
            "access to * by * read\n")
        ldif_text = ldif
        ldif = root / "seed.ldif"
        ldif.write_text(base_ldif() if ldif_text is None else ldif_text)
        subprocess.run(["/usr/sbin/slapadd", "-f", str(self.conf), "-l", str(ldif)],
                       check=True, capture_output=True)

    def make_tls(self):
        """A CA and a server certificate for 127.0.0.1; returns slapd.conf's TLS lines."""
        d = self.root / "tls"
        d.mkdir()
        self.ca = d / "ca.pem"

        def ssl(*args):
            subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

        ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
            "-subj", "/CN=test LDAP CA", "-keyout", d / "ca.key", "-out", self.ca)
        ssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=127.0.0.1", "-keyout", d / "key.pem", "-out", d / "req.pem")
        (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
        ssl("x509", "-req", "-in", d / "req.pem", "-CA", self.ca, "-CAkey", d / "ca.key", "-CAcreateserial",
            "-days", "30", "-extfile", d / "ext.cnf", "-out", d / "cert.pem")
        return (f"TLSCACertificateFile {self.ca}\nTLSCertificateFile {d / 'cert.pem'}\n"
                f"TLSCertificateKeyFile {d / 'key.pem'}\n")

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        log = open(self.root / f"slapd.{self.starts}.log", "wb")
        self.starts += 1
        urls = self.url + (f" ldaps://127.0.0.1:{self.tls_port}/" if self.tls_port else "")
        self.proc = subprocess.Popen(["/usr/sbin/slapd", "-f", str(self.conf), "-h", urls, "-d", "0"],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, proc=self.proc)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def modify(self, ldif, add=False):
        cmd = ["ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW]
        if add:
            cmd.append("-a")
        subprocess.run(cmd, input=ldif, text=True, check=True, capture_output=True)

    def search(self, filt, *attrs):
        return subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.url, "-b", SUFFIX, filt, *attrs],
                              capture_output=True, text=True, check=True).stdout


def cf_text(slapd, **over):
    """An ldap-users.cf for the test slapd, as doc/ldap.md shows it."""
    settings = {
        "server_host": f"127.0.0.1:{slapd.port}",
        "search_base": PEOPLE,
        "query_filter": "(&(objectClass=posixAccount)(mail=%s))",
        "user_filter": "(&(objectClass=posixAccount)(uid=%s))",
        "alias_attribute": "mailAlternateAddress",
        "bind_dn": READER_DN,
        "bind_pw": READER_PW,
        "timeout": "3s",
        "cache_ttl": "2s",
        "negative_cache_ttl": "2s",
    }
    settings.update(over)
    return "".join(f"{k} = {v}\n" for k, v in settings.items() if v is not None)


class Probe:
    """One ldap-probe process: one directory, commands in, one line out each."""

    def __init__(self, binary, spec, log, conf=None):
        args = [str(binary)]
        if conf is not None:
            args += ["-c", str(conf)]
        args.append(spec)
        # its log (a warning per failed call while slapd is down) goes to a file, not a pipe that fills
        self.log = Path(log)
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.logf, text=True, bufsize=1)

    def __call__(self, *words):
        line = "\t".join(str(w) for w in words)
        assert "\n" not in line
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if answer == "":
            raise AssertionError(f"ldap-probe died: {self.log.read_text()[-2000:]}")
        return answer.rstrip("\n")

    def stats(self):
        return dict(kv.split("=") for kv in self("stats").split()[1:])

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.logf.close()
        log = self.log.read_text()
        # a clean exit: no crash, no sanitizer report (leaks included, under LDAP_PROBE_SANITIZE=1)
        assert self.proc.returncode in (0, 1), log[-3000:]
        assert "Sanitizer" not in log and "runtime error" not in log, log[-3000:]
        return log
