"""imapload — an IMAP load generator: N concurrent clients (one process each,
so Python's lock does not serialise them) running one mix for a fixed time,
each command's latency recorded.

Mixes (what each client does in a loop, picks weighted at random):
  select  SELECT INBOX (the whole corpus) again and again
  fetch   SELECT; UID FETCH of a 50-message list (FLAGS, size, date, 6 header
          fields); UID FETCH BODY.PEEK[] of one message; ENVELOPE+BODYSTRUCTURE
  store   UID STORE +FLAGS/-FLAGS of \\Seen, \\Flagged and a keyword, on one
          message or a range of ten, with and without .SILENT
  search  UID SEARCH UNSEEN, FROM, SUBJECT, SENTSINCE, OR, BODY (a full scan)
  append  APPEND of a 4-8 KB message (unique bytes: a corpus message with its
          own header) into the folder Bench
  idle    clients IDLE in INBOX while one more appends to INBOX 20 times a
          second; the latency is from the APPEND being sent to each idler
          seeing its EXISTS
  resync  a phone: connect, LOGIN, ENABLE QRESYNC, SELECT INBOX (QRESYNC
          (uidvalidity modseq)), LOGOUT — while one more client changes flags,
          appends and expunges; the latency is the whole resync
  mixed   each operation picked at random from the others: SELECT 1/7, a
          fetch-mix operation 3/7, a store-mix one 1/7, a search-mix one 1/7,
          an APPEND 1/7 (what a busy mailbox's clients do at once)

Every client connects, logs in and selects (a phone also makes its first full
sync) before the measured window; the window opens for all of them at once
when the last one is ready (a barrier), and lasts DURATION seconds.

Standalone:  imapload.py --port P --user U --password W --mix fetch --clients 8 --duration 5
prints one JSON object: {"ops": N, "elapsed": s, "latencies": {op: [s, ...]}}.
"""
import argparse
import json
import multiprocessing as mp
import os
import random
import re
import socket
import sys
import threading
import time

IDLE_GRACE = 2.0  # idlers stay this long after the last APPEND; a notification later than that is missed
MIXES = ("select", "fetch", "store", "search", "append", "idle", "resync", "mixed")
HEADER_FIELDS = "BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)]"
SEARCH_WORDS = ["money", "linux", "free", "re:", "update", "the", "list", "razor", "offer", "perl"]
FROM_WORDS = ["yahoo", "example", "lists.sourceforge", "hotmail", "spamassassin", "zzzz", "jm", "aol"]


class ImapError(Exception):
    pass


class Imap:
    """A small IMAP client: a command is sent, every response line (with its
    literals) is read up to the tagged one; NO/BAD raise ImapError."""

    LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")

    def __init__(self, port, host="127.0.0.1", timeout=60):
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()  # our own buffer: a read timeout (IDLE) leaves it intact
        self.n = 0
        self.greeting = self.line()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _readline(self):
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                ln = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return ln
            if len(self.buf) > 1 << 20:
                raise ImapError("response line over 1 MB")
            start = len(self.buf)
            self._fill()

    def _read(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def line(self):
        """One response line, with any literals it carries read into it."""
        parts = []
        while True:
            ln = self._readline()
            parts.append(ln)
            m = self.LITERAL.search(ln)
            if not m:
                return b"".join(parts)
            parts.append(self._read(int(m.group(1))))

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, text, literal=None):
        """Runs one command; returns (untagged lines, tagged line)."""
        self.n += 1
        tag = b"a%d" % self.n
        data = text.encode() if isinstance(text, str) else text
        untagged = []
        if literal is None:
            self.send(tag + b" " + data + b"\r\n")
        else:
            self.send(tag + b" " + data + b" {%d}\r\n" % len(literal))
            while True:
                ln = self.line()
                if ln.startswith(b"+"):
                    break
                if ln.startswith(tag + b" "):
                    raise ImapError(ln.decode(errors="replace").strip())
                untagged.append(ln)
            self.send(literal + b"\r\n")
        while True:
            ln = self.line()
            if ln.startswith(tag + b" "):
                if ln[len(tag) + 1:len(tag) + 3] != b"OK":
                    raise ImapError(f"{text if isinstance(text, str) else '?'}: "
                                    f"{ln.decode(errors='replace').strip()}")
                return untagged, ln
            untagged.append(ln)

    def login(self, user, password):
        return self.cmd(f'LOGIN "{user}" "{password}"')

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, EOFError, ImapError):
            pass
        self.sock.close()


def exists_of(lines):
    for ln in lines:
        m = re.match(rb"\* (\d+) EXISTS", ln)
        if m:
            return int(m.group(1))
    return None


def uids_of(lines):
    out = []
    for ln in lines:
        if ln.startswith(b"* SEARCH"):
            out.extend(int(x) for x in ln.split()[2:])
    return out


def resp_code(lines, code):
    for ln in lines:
        m = re.search(rb"\[" + code.encode() + rb" (\d+)\]", ln)
        if m:
            return int(m.group(1))
    return None


def make_message(corpus_msgs, rng, k):
    """A 4-8 KB message with unique bytes: a corpus message (cut or padded) with a header of its own."""
    body = rng.choice(corpus_msgs).replace(b"\r\n", b"\n")
    want = rng.randint(4096, 8192)
    if len(body) < want:
        body += b"\n" + (b"x" * 75 + b"\n") * ((want - len(body)) // 76 + 1)
    body = body[:want]
    if not body.endswith(b"\n"):
        body += b"\n"
    head = f"X-Bench-Id: {os.getpid()}.{k}.{rng.getrandbits(64):x}\n".encode()
    return (head + body).replace(b"\n", b"\r\n")


class Client:
    """One client's state for a mix."""

    def __init__(self, cfg, seed):
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.lat = {}
        self.detail = {}  # parts of an operation, shown but not counted as operations

    def wait_start(self):
        """Connecting, logging in and a phone's first full sync happen before the
        measured window: every client starts its loop when the last one is
        ready. Returns the end of the window."""
        self.cfg["barrier"].wait(60)
        return time.monotonic() + self.cfg["duration"]

    def timed(self, op, fn, *a):
        t0 = time.monotonic()
        r = fn(*a)
        self.lat.setdefault(op, []).append(time.monotonic() - t0)
        return r

    def connect(self):
        c = Imap(self.cfg["port"])
        c.login(self.cfg["user"], self.cfg["password"])
        return c


def step_select(cl, c, uids):
    cl.timed("select", c.cmd, "SELECT INBOX")


def step_fetch(cl, c, uids):
    rng = cl.rng
    r = rng.random()
    if r < 0.05:
        cl.timed("select", c.cmd, "SELECT INBOX")
    elif r < 0.30:
        i = rng.randrange(max(1, len(uids) - 50))
        cl.timed("fetch-list", c.cmd, f"UID FETCH {uids[i]}:{uids[min(i + 49, len(uids) - 1)]} "
                                      f"(UID FLAGS RFC822.SIZE INTERNALDATE {HEADER_FIELDS})")
    elif r < 0.70:
        cl.timed("fetch-body", c.cmd, f"UID FETCH {rng.choice(uids)} (BODY.PEEK[])")
    else:
        cl.timed("fetch-struct", c.cmd, f"UID FETCH {rng.choice(uids)} (ENVELOPE BODYSTRUCTURE)")


def step_store(cl, c, uids):
    rng = cl.rng
    r = rng.random()
    sign = rng.choice("+-")
    if r < 0.4:
        cl.timed("store-seen", c.cmd, f"UID STORE {rng.choice(uids)} {sign}FLAGS (\\Seen)")
    elif r < 0.7:
        cl.timed("store-silent", c.cmd, f"UID STORE {rng.choice(uids)} {sign}FLAGS.SILENT (\\Flagged)")
    elif r < 0.85:
        i = rng.randrange(max(1, len(uids) - 10))
        cl.timed("store-range", c.cmd, f"UID STORE {uids[i]}:{uids[min(i + 9, len(uids) - 1)]} "
                                       f"{sign}FLAGS.SILENT (\\Seen)")
    else:
        cl.timed("store-keyword", c.cmd, f"UID STORE {rng.choice(uids)} {sign}FLAGS ($Bench)")


def search_command(rng):
    r = rng.random()
    if r < 0.25:
        return "search-flag", "UID SEARCH UNSEEN"
    if r < 0.45:
        return "search-from", f'UID SEARCH FROM "{rng.choice(FROM_WORDS)}"'
    if r < 0.70:
        return "search-subject", f'UID SEARCH SUBJECT "{rng.choice(SEARCH_WORDS)}"'
    if r < 0.85:
        return "search-date", f"UID SEARCH SENTSINCE {rng.randint(1, 28)}-Sep-2002"
    if r < 0.93:
        return "search-or", (f'UID SEARCH OR SUBJECT "{rng.choice(SEARCH_WORDS)}" '
                             f'FROM "{rng.choice(FROM_WORDS)}" UNSEEN')
    return "search-body", f'UID SEARCH BODY "{rng.choice(SEARCH_WORDS)}"'


def step_search(cl, c, uids):
    op, text = search_command(cl.rng)
    cl.timed(op, c.cmd, text)


def step_append(cl, c, uids):
    cl.appended = getattr(cl, "appended", 0) + 1
    msg = make_message(cl.cfg["corpus_msgs"], cl.rng, cl.appended)
    cl.timed("append", c.cmd, "APPEND Bench (\\Seen)", msg)


MIXED = (step_select, step_fetch, step_fetch, step_fetch, step_store, step_search, step_append)


def step_mixed(cl, c, uids):
    cl.rng.choice(MIXED)(cl, c, uids)


STEPS = {"select": step_select, "fetch": step_fetch, "store": step_store, "search": step_search,
         "append": step_append, "mixed": step_mixed}


def run_steps(cl, mix):
    """A client of one of the STEPS mixes: connect, LOGIN, SELECT INBOX, then
    the mix's operations until the end of the measured window."""
    c = cl.connect()
    c.cmd("SELECT INBOX")
    uids = uids_of(c.cmd("UID SEARCH ALL")[0])
    step = STEPS[mix]
    deadline = cl.wait_start()
    while time.monotonic() < deadline:
        step(cl, c, uids)
    c.close()


def run_idler(cl):
    """IDLE in INBOX until the deadline; records (exists, time seen) events."""
    c = cl.connect()
    un, _ = c.cmd("SELECT INBOX")
    n0 = exists_of(un)
    c.n += 1
    tag = b"a%d" % c.n
    c.send(tag + b" IDLE\r\n")
    while not c.line().startswith(b"+"):
        pass
    deadline = cl.wait_start() + IDLE_GRACE
    events = []
    c.sock.settimeout(0.25)
    done_sent = False
    while True:
        if not done_sent and time.monotonic() >= deadline:
            c.send(b"DONE\r\n")
            done_sent = True
        try:
            ln = c.line()
        except socket.timeout:
            if done_sent and time.monotonic() > deadline + 30:
                raise ImapError("no answer to DONE")
            continue
        t = time.monotonic()
        m = re.match(rb"\* (\d+) EXISTS", ln)
        if m:
            events.append((int(m.group(1)), t))
        if ln.startswith(tag + b" "):
            break
    c.sock.settimeout(60)
    c.close()
    return n0, events, deadline


def run_idle_appender(cl, interval=0.05):
    c = cl.connect()
    corpus = cl.cfg["corpus_msgs"]
    stop = cl.wait_start()  # the idlers stay IDLE_GRACE longer, for the last notifications
    sent = []
    k = 0
    nxt = time.monotonic()
    while time.monotonic() < stop:
        k += 1
        msg = make_message(corpus, cl.rng, k)
        t = time.monotonic()
        cl.timed("idle-append", c.cmd, "APPEND INBOX", msg)
        sent.append((t, time.monotonic()))
        nxt += interval
        d = nxt - time.monotonic()
        if d > 0:
            time.sleep(d)
    c.close()
    return sent


def phone_resync(cl, state):
    """A phone's resync: connect, LOGIN, ENABLE QRESYNC, SELECT with QRESYNC, LOGOUT."""
    t0 = time.monotonic()
    c = Imap(cl.cfg["port"])
    c.login(cl.cfg["user"], cl.cfg["password"])
    t1 = time.monotonic()
    c.cmd("ENABLE QRESYNC")
    if state.get("modseq"):
        un, _ = c.cmd(f"SELECT INBOX (QRESYNC ({state['uidvalidity']} {state['modseq']}))")
    else:
        un, _ = c.cmd("SELECT INBOX (CONDSTORE)")
        c.cmd("UID FETCH 1:* (FLAGS)")
    t2 = time.monotonic()
    state["uidvalidity"] = resp_code(un, "UIDVALIDITY") or state.get("uidvalidity")
    state["modseq"] = resp_code(un, "HIGHESTMODSEQ") or state.get("modseq")
    state["changes"] = state.get("changes", 0) + sum(1 for ln in un if b" FETCH " in ln or b"VANISHED" in ln)
    c.cmd("LOGOUT")
    c.sock.close()
    cl.detail.setdefault("resync:connect+login", []).append(t1 - t0)
    cl.detail.setdefault("resync:enable+select", []).append(t2 - t1)


def run_phone(cl):
    state = {}
    phone_resync(cl, state)  # the first full sync is not what is measured
    cl.detail = {}
    if not state.get("modseq"):
        raise ImapError("no HIGHESTMODSEQ after SELECT (CONDSTORE)")
    deadline = cl.wait_start()
    while time.monotonic() < deadline:
        cl.timed("resync", phone_resync, cl, state)


def run_changer(cl, interval=0.02):
    """Changes what the phones resync: flags on random messages, and an
    appended message expunged again (VANISHED for the phones)."""
    c = cl.connect()
    c.cmd("SELECT INBOX")
    uids = uids_of(c.cmd("UID SEARCH ALL")[0])
    corpus = cl.cfg["corpus_msgs"]
    rng = cl.rng
    k = 0
    last = None
    deadline = cl.wait_start()
    while time.monotonic() < deadline:
        k += 1
        if k % 10 == 0:
            _, tagged = c.cmd("APPEND INBOX", make_message(corpus, rng, k))
            m = re.search(rb"APPENDUID \d+ (\d+)", tagged)
            if last:
                c.cmd(f"UID STORE {last} +FLAGS.SILENT (\\Deleted)")
                c.cmd(f"UID EXPUNGE {last}")
            last = int(m.group(1)) if m else None
        else:
            cl.timed("change-flags", c.cmd, f"UID STORE {rng.choice(uids)} {rng.choice('+-')}FLAGS.SILENT (\\Seen)")
        time.sleep(interval)
    if last:
        c.cmd(f"UID STORE {last} +FLAGS.SILENT (\\Deleted)")
        c.cmd(f"UID EXPUNGE {last}")
    c.close()


def _worker(role, cfg, seed, q):
    cl = Client(cfg, seed)
    try:
        extra = None
        if role == "idler":
            extra = run_idler(cl)
        elif role == "idle-appender":
            extra = run_idle_appender(cl)
        elif role == "phone":
            run_phone(cl)
        elif role == "changer":
            run_changer(cl)
        else:
            run_steps(cl, role)
        q.put((role, cl.lat, extra, None, cl.detail))
    except Exception as e:  # reported as the run's failure
        cfg["barrier"].abort()
        q.put((role, cl.lat, None, f"{role}: {type(e).__name__}: {e}", cl.detail))


def run_mix(cfg, mix, clients, duration, seed=1, probe=None):
    """Runs MIX with CLIENTS clients for a measured window of DURATION seconds,
    which opens when every client is connected and ready.
    Returns {"ops": n, "elapsed": s, "latencies": {op: [s...]}, "errors": [...], "probe": x}
    where x is probe() at the end of the window minus probe() at its start."""
    if mix == "idle":
        roles = ["idler"] * clients + ["idle-appender"]
    elif mix == "resync":
        roles = ["phone"] * clients + ["changer"]
    else:
        roles = [mix] * clients
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    barrier = ctx.Barrier(len(roles) + 1)  # the clients, and this process (which samples the probe)
    cfg = dict(cfg, barrier=barrier, duration=duration)
    procs = [ctx.Process(target=_worker, args=(r, cfg, seed * 1000 + i, q), daemon=True)
             for i, r in enumerate(roles)]
    for p in procs:
        p.start()
    probed = None
    errors = []
    try:
        barrier.wait(90)
        p0 = probe() if probe is not None else None
        time.sleep(duration)
        if probe is not None:
            probed = probe() - p0
    except threading.BrokenBarrierError:
        errors.append("a client failed before the measured window")
    results = []
    hard = time.monotonic() + 60 + (IDLE_GRACE if mix == "idle" else 0)
    while len(results) < len(procs) and time.monotonic() < hard:
        try:
            results.append(q.get(timeout=1))
        except Exception:
            if all(not p.is_alive() for p in procs) and q.empty():
                break
    elapsed = duration  # operations are counted from start to deadline (the last one may end after it)
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()
    lat, detail = {}, {}
    idlers, sent = [], None
    for role, l, extra, err, det in results:
        if err:
            errors.append(err)
        if role in ("changer", "idle-appender"):
            continue  # the background load is not what is measured
        for op, v in l.items():
            lat.setdefault(op, []).extend(v)
        for op, v in det.items():
            detail.setdefault(op, []).extend(v)
        if role == "idler" and extra:
            idlers.append(extra)
    for role, l, extra, err, det in results:
        if role == "idle-appender" and extra:
            sent = extra
    if len(results) < len(procs):
        errors.append(f"{len(procs) - len(results)} clients did not report")
    if mix == "idle":
        lat = {"idle-notify": []}
        missed = 0
        for n0, events, until in idlers:
            for k, (t_sent, t_ok) in enumerate(sent or [], 1):
                seen = next((t for n, t in events if n >= n0 + k), None)
                if seen is not None:
                    lat["idle-notify"].append(seen - t_sent)
                elif t_ok < until - IDLE_GRACE:  # its APPEND ended IDLE_GRACE before the idler stopped
                    missed += 1
        if missed:
            errors.append(f"idle: {missed} notifications not seen within {IDLE_GRACE:.0f} s of their APPEND's OK")
    ops = sum(len(v) for v in lat.values())
    return {"ops": ops, "elapsed": elapsed, "latencies": lat, "detail": detail, "errors": errors,
            "probe": probed}


def load_corpus(path, limit=400, seed=7):
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f != "README.md")
    rng = random.Random(seed)
    rng.shuffle(files)
    out = []
    for f in files[:limit]:
        with open(f, "rb") as fh:
            out.append(fh.read())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--mix", choices=MIXES, required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--corpus", default="/work/shared/corpus/spamassassin")
    a = ap.parse_args()
    cfg = {"port": a.port, "user": a.user, "password": a.password, "corpus_msgs": load_corpus(a.corpus)}
    print(json.dumps(run_mix(cfg, a.mix, a.clients, a.duration)))


if __name__ == "__main__":
    sys.exit(main())
