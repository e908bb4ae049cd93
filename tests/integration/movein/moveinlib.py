"""Helpers for the moving-in tests (imported by name): a real Dovecot as the
old server (IMAPS on 127.0.0.1 with a certificate from a test CA), filled
over IMAP with APPEND (flags, keywords, internal dates as Dovecot keeps
them), a proxy that cuts connections, and readers that compare both sides
message by message."""
import base64
import hashlib
import imaplib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from mkhelpers import BIN, CORPUS, free_port, wait_port

NOBODY = 65534


def mutf7(name):
    """UTF-8 -> IMAP modified UTF-7 (RFC 3501 5.1.3)."""
    out, buf = [], []

    def flush():
        if buf:
            b = base64.b64encode("".join(buf).encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            out.append("&" + b + "-")
            buf.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def make_ca(d: Path):
    """A test CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    d.mkdir(parents=True, exist_ok=True)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "30", "-subj", "/CN=mailkeep test CA", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=localhost", "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey",
        str(d / "ca.key"), "-CAcreateserial", "-days", "30", "-extfile", str(d / "ext"),
        "-out", str(d / "server.pem"))
    return d / "ca.pem", d / "server.pem", d / "server.key"


class TokenServer:
    """A stand-in for an OAuth2 provider's token introspection endpoint (RFC
    7662), for Dovecot's oauth2 passdb: no identity provider can run here.
    tokens: access token -> user name."""

    def __init__(self, tokens):
        tokens = dict(tokens)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                token = parse_qs(body).get("token", [""])[0]
                if not token:
                    auth = self.headers.get("Authorization", "")
                    token = auth[7:] if auth.startswith("Bearer ") else ""
                user = tokens.get(token)
                out = ('{"active": true, "username": "%s"}' % user) if user else '{"active": false}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out.encode())

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Dovecot:
    """Debian's Dovecot with IMAPS on a free port, users in a passwd-file
    ({PLAIN} passwords: a test), Maildir with '/' as the separator (so a
    folder name may hold '.'), special-use folders under provider-like
    names, and a virtual "All Mail" folder (\\All) as Gmail has."""

    def __init__(self, users, tokens=None):
        self.root = Path(tempfile.mkdtemp(prefix="mk-movein-dovecot-"))
        self.tokens = TokenServer(tokens or {})
        (self.root / "oauth2.conf").write_text(
            f"introspection_mode = post\nintrospection_url = http://127.0.0.1:{self.tokens.port}/introspect\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
            "tokeninfo_url = \nforce_introspection = yes\n")
        os.chmod(self.root, 0o755)
        self.port = free_port()
        self.plain_port = free_port()
        self.ca, cert, key = make_ca(self.root / "tls")
        for p in (cert, key):
            os.chmod(p, 0o644)
        (self.root / "run").mkdir()
        (self.root / "state").mkdir()
        self.users = dict(users)
        virt = self.root / "virtual" / "All Mail"
        virt.mkdir(parents=True)
        (virt / "dovecot-virtual").write_text("*\n  all\n")
        shutil.chown(self.root / "virtual", NOBODY, NOBODY)
        shutil.chown(virt, NOBODY, NOBODY)
        with open(self.root / "users", "w") as f:
            for name, pw in users.items():
                home = self.root / "home" / name
                home.mkdir(parents=True)
                shutil.chown(home, NOBODY, NOBODY)
                # a user named courier-* sees a Courier/Cyrus-like namespace: "INBOX." and '.'
                extra = ("userdb_namespace/inbox/prefix=INBOX. userdb_namespace/inbox/separator=. "
                         "userdb_namespace/virtual/separator=. userdb_namespace/virtual/prefix=[Virtual]."
                         if name.startswith("courier") else "")
                f.write(f"{name}:{{PLAIN}}{pw}:{NOBODY}:{NOBODY}::{home}::{extra}\n")
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(f"""instance_name = mk-movein-{os.getpid()}-{self.port}
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain login xoauth2 oauthbearer
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_fsync = never
mail_plugins = $mail_plugins virtual
first_valid_uid = 1
imap_max_line_length = 64k
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {self.root}/users
  mechanisms = plain login
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.root}/oauth2.conf
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {self.root}/users
}}
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
  mailbox "Sent Items" {{
    special_use = \\Sent
  }}
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Spam {{
    special_use = \\Junk
  }}
  mailbox "Deleted Messages" {{
    special_use = \\Trash
  }}
  mailbox Old {{
    special_use = \\Archive
  }}
}}
namespace virtual {{
  prefix = [Virtual]/
  separator = /
  location = virtual:{self.root}/virtual:INDEX=~/virtual-index
  list = yes
  subscriptions = no
  mailbox "All Mail" {{
    special_use = \\All
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.plain_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 1000
}}
""")
        self.log = open(self.root / "master.out", "wb")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, proc=self.proc, timeout=20)
        wait_port(self.plain_port, proc=self.proc, timeout=20)

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        self.tokens.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self, user):
        ctx = ssl.create_default_context(cafile=str(self.ca))
        m = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=ctx, timeout=120)
        m.login(user, self.users[user])
        return m

    def url(self, user, port=None):
        return f"imaps://{user}@127.0.0.1:{port or self.port}"


def corpus_messages(n, seed=0):
    """n distinct messages (bytes, CRLF lines) from the corpus, repeated with
    a perturbed header when the corpus is smaller than n."""
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")
    out = []
    i = 0
    while len(out) < n:
        f = files[i % len(files)]
        data = f.read_bytes()
        if data.startswith(b"From "):
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
        i += 1
        if not re.match(rb"^[!-9;-~]+:", data):
            continue
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        rnd = i // len(files)
        if rnd or seed:
            data = f"X-Movein-Copy: {rnd}.{seed}.{i}\r\n".encode() + data
        out.append(data)
    return out


def imap_date(t):
    return imaplib.Time2Internaldate(t)


def append_all(m, folder_wire, items):
    """items: (bytes, flags string, unix time)."""
    for data, flags, t in items:
        typ, resp = m.append(f'"{folder_wire}"', flags or None, imap_date(t), data)
        assert typ == "OK", resp


FETCH_RE = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)|INTERNALDATE \"([^\"]+)\"")


def read_mailbox(m, wire):
    """[(bytes, frozenset(flags without \\Recent), internaldate text)] of one folder."""
    typ, _ = m.select(f'"{wire}"', readonly=True)
    assert typ == "OK", wire
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK"
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item
        flags = re.search(rb"FLAGS \(([^)]*)\)", head)
        date = re.search(rb'INTERNALDATE "([^"]+)"', head)
        fl = frozenset(x for x in flags.group(1).decode().split() if x != "\\Recent") if flags else frozenset()
        out.append((body, fl, imaplib.Internaldate2tuple(b'INTERNALDATE "' + date.group(1) + b'"')
                    if date else None))
    return out


def list_folders(m):
    """{name (wire): attributes}"""
    typ, data = m.list('""', "*")
    out = {}
    for line in data:
        if line is None:
            continue
        if isinstance(line, tuple):
            head, name = line
            attrs = re.match(rb"\(([^)]*)\)", head).group(1).decode()
            out[name.decode()] = attrs
            continue
        mt = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
        name = mt.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[name] = mt.group(1).decode()
    return out


def digest(b):
    return hashlib.sha256(b).hexdigest()


class CuttingProxy:
    """A TCP proxy in front of the server: the first `cuts` connections are
    cut (both sides closed) once `after` bytes came from the server; later
    ones pass through. TLS goes through it untouched."""

    def __init__(self, target_port, after, cuts=1):
        self.port = free_port()
        self.target = target_port
        self.after = after
        self.cuts_left = cuts
        self.cut_done = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.stop = False
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                cut = self.cuts_left > 0
                if cut:
                    self.cuts_left -= 1
            threading.Thread(target=self.pipe, args=(c, s, None), daemon=True).start()
            threading.Thread(target=self.pipe, args=(s, c, self.after if cut else None), daemon=True).start()

    def pipe(self, a, b, limit):
        n = 0
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if limit is not None and n + len(d) >= limit:
                    b.sendall(d[:max(0, limit - n)])
                    with self.lock:
                        self.cut_done += 1
                    break
                b.sendall(d)
                n += len(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.stop = True
        self.sock.close()


class RefusingProxy:
    """A TLS proxy in front of the Dovecot that answers the first `count`
    "UID FETCH ... BODY.PEEK[]" commands itself with `<tag> NO [code] ...`,
    as a provider under load does, and passes everything else through (a
    test double for the provider's refusal; the server behind it is real).
    It holds a certificate from the same test CA."""

    def __init__(self, dovecot, code, count=1, untagged=False):
        import selectors
        self.selectors = selectors
        self.dv = dovecot
        self.code = code
        self.left = count
        self.refused = 0
        self.untagged = untagged  # say "* OK [code]" before passing the FETCH on
        self.port = free_port()
        self.sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        d = dovecot.root / "tls"
        self.sctx.load_cert_chain(str(d / "server.pem"), str(d / "server.key"))
        self.cctx = ssl.create_default_context(cafile=str(dovecot.ca))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, raw):
        try:
            c = self.sctx.wrap_socket(raw, server_side=True)
            s = self.cctx.wrap_socket(socket.create_connection(("127.0.0.1", self.dv.port)),
                                      server_hostname="localhost")
        except (OSError, ssl.SSLError):
            raw.close()
            return
        sel = self.selectors.DefaultSelector()
        sel.register(c, self.selectors.EVENT_READ)
        sel.register(s, self.selectors.EVENT_READ)
        pending = b""
        try:
            while True:
                ready = [k.fileobj for k, _ in sel.select(timeout=0 if c.pending() or s.pending() else 30)]
                if c.pending():
                    ready.append(c)
                if s.pending():
                    ready.append(s)
                if not ready:
                    break
                for sock in set(ready):
                    data = sock.recv(65536)
                    if not data:
                        raise EOFError
                    if sock is s:
                        c.sendall(data)
                        continue
                    pending += data
                    while b"\r\n" in pending:
                        line, pending = pending.split(b"\r\n", 1)
                        refuse = False
                        if b"UID FETCH" in line and b"BODY.PEEK[]" in line:
                            with self.lock:
                                if self.left > 0:
                                    self.left -= 1
                                    self.refused += 1
                                    refuse = True
                        if refuse and self.untagged:
                            # the server is idle (the FETCH is not passed on yet): a response boundary
                            c.sendall(b"* OK [" + self.code.encode() + b"] test: slow down\r\n")
                            s.sendall(line + b"\r\n")
                        elif refuse:
                            tag = line.split(b" ", 1)[0]
                            c.sendall(tag + b" NO [" + self.code.encode() + b"] test: try again later\r\n")
                        else:
                            s.sendall(line + b"\r\n")
        except (OSError, EOFError, ssl.SSLError):
            pass
        for x in (c, s):
            try:
                x.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()
