"""Under-attack benchmark (issue 13; run by run.sh inside `unshare -n`).

Eight legitimate clients, each from an address of its own outside
mynetworks, loop once a second: deliver a 2 KB message over SMTP to its
user, then log in over IMAP, SELECT INBOX and FETCH the newest message
(60 connections a minute per address, under the default rate limit of 120:
a busy but real client, not a flood). Each operation must
finish within 30 s to count as served. Phases of ABUSE_BENCH_SECONDS:
  quiet  - the legitimate clients alone;
  v4     - plus ABUSE_BENCH_HOSTILE hostile connections from 40 addresses
           (127.3.REP.1-40), half SMTP, half IMAP, most holding the connection
           silently, one in five guessing the legitimate users' passwords,
           each reconnecting a second after it is refused or dropped;
  v6     - the same from random addresses of one /64 (2001:db8:a:REP::/64).
repeated ABUSE_BENCH_REPS times, interleaved. Printed: served %, median and
p99 latency per operation and phase, and p99 under attack / p99 quiet (the
goal: 100% served, p99 under 2x). mailkeep runs with its default limits; only
mynetworks is 127.0.0.1/32 so that the clients are not trusted.
"""
import imaplib
import json
import os
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
from benchlib import BIN, median_range, session_cpu  # noqa: E402

REPS = int(os.environ.get("ABUSE_BENCH_REPS", "3"))
SECONDS = float(os.environ.get("ABUSE_BENCH_SECONDS", "20"))
HOSTILE = int(os.environ.get("ABUSE_BENCH_HOSTILE", "2000"))
CLIENTS = 8
OP_TIMEOUT = 30
PACE = 1.0  # seconds per delivery + read cycle of one client


def sh(*argv):
    subprocess.run(argv, check=True)


def wait_port(host, port, proc, timeout=20):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited with {proc.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on {host}:{port}")


def listen_overflows():
    """TcpExt ListenOverflows of this network namespace: SYNs dropped because an
    accept queue was full (a client then waits a second for its retransmit)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split()[1:], values.split()[1:])).get("ListenOverflows", 0))
    return 0


def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))] if v else float("nan")


class IMAP4From(imaplib.IMAP4):
    """imaplib's client, connecting from a given source address."""

    def __init__(self, source, host, port, timeout):
        self.source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        import socket
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


class Legit:
    """The eight legitimate clients; results per operation kind."""

    def __init__(self, smtp_port, imap_port):
        self.smtp_port, self.imap_port = smtp_port, imap_port
        self.stop = threading.Event()
        self.lat = {"smtp": [], "imap": []}
        self.fail = {"smtp": 0, "imap": 0}
        self.errors = []
        self.lock = threading.Lock()

    def record(self, kind, t0, ok, err=None):
        took = time.monotonic() - t0
        with self.lock:
            if ok and took <= OP_TIMEOUT:
                self.lat[kind].append(took)
            else:
                self.fail[kind] += 1
                if err is not None and len(self.errors) < 5:
                    self.errors.append(f"{kind}: {err!r}")

    def client(self, i):
        user = f"user{i}"
        n = 0
        body = ("x" * 76 + "\r\n") * 26
        while not self.stop.is_set():
            n += 1
            cycle = time.monotonic()
            t0 = time.monotonic()
            try:
                with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=OP_TIMEOUT,
                                  source_address=(f"127.2.0.{i + 1}", 0)) as s:
                    s.sendmail(f"sender{i}@example.net", [f"{user}@example.org"],
                               f"From: sender{i}@example.net\r\nTo: {user}@example.org\r\n"
                               f"Subject: {n}\r\nMessage-ID: <{i}.{n}.{time.time()}@example.net>\r\n\r\n{body}")
                self.record("smtp", t0, True)
            except Exception as e:  # noqa: BLE001 - any failure is "not served"
                self.record("smtp", t0, False, e)
            t0 = time.monotonic()
            try:
                m = IMAP4From(f"127.1.0.{i + 1}", "127.0.0.1", self.imap_port, timeout=OP_TIMEOUT)
                m.login(user, f"pw-{user}")
                typ, data = m.select("INBOX")
                count = int(data[0])
                if count:
                    m.fetch(str(count), "(BODY.PEEK[])")
                m.logout()
                self.record("imap", t0, typ == "OK")
            except Exception as e:  # noqa: BLE001
                self.record("imap", t0, False, e)
            # a busy but human pace: one delivery and one check a second per client
            left = PACE - (time.monotonic() - cycle)
            if left > 0:
                self.stop.wait(left)

    def run(self, seconds):
        threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in threads:
            t.join(OP_TIMEOUT + 10)


def main():
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "-6", "route", "add", "local", "2001:db8:a::/48", "dev", "lo")
    work = Path(tempfile.mkdtemp(prefix="mk-abusebench-"))
    smtp, smtp6, imap, imap6 = 12525, 12526, 12143, 12144
    conf = work / "mailkeep.conf"
    conf.write_text(
        f"config_directory = {work}\ndata_directory = {work}/data\nmyhostname = mx.example.org\n"
        f"mydomain = example.org\nmydestination = example.org\nlog_target = stderr\n"
        f"mount_point = {work}/mail\nmynetworks = 127.0.0.1/32\nimapd_plaintext_networks = 127.0.0.0/8\n"
        f"smtpd_listen = 127.0.0.1:{smtp} [::1]:{smtp6}\nlmtp_listen =\n"
        f"imapd_listen = 127.0.0.1:{imap} [::1]:{imap6}\nimapd_tls_listen =\n")
    mk = [str(BIN / "mailkeep"), "-c", str(conf)]
    users = [f"user{i}" for i in range(CLIENTS)]
    for u in users:
        subprocess.run(mk + ["user", "add", u, "--password-file", "-"], input=f"pw-{u}\n", text=True,
                       check=True, capture_output=True)
    procs = []
    for name in ("mailkeep-smtpin", "mailkeep-imapd"):
        log = open(work / f"{name}.log", "wb")
        procs.append(subprocess.Popen([str(BIN / name), "-c", str(conf), "-f"], stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    wait_port("127.0.0.1", smtp, procs[0])
    wait_port("127.0.0.1", imap, procs[1])
    results = {}  # phase -> list of per-rep dicts
    hostile_stats = {}
    try:
        # each legitimate user has logged in once from its own address (a phone that works)
        Legit(smtp, imap).run(2)
        for rep in range(REPS):
            for phase in ("quiet", "v4", "v6"):
                attacker = None
                if phase != "quiet":
                    # a fresh attacker each time (the table remembers the last one's rate)
                    spec = f"v4:127.3.{rep}.1-40" if phase == "v4" else f"v6:2001:db8:a:{rep}::/64"
                    sp, ip_ = (f"127.0.0.1:{smtp}", f"127.0.0.1:{imap}") if phase == "v4" else \
                        (f"[::1]:{smtp6}", f"[::1]:{imap6}")
                    attacker = subprocess.Popen([sys.executable, str(HERE / "hostile.py"), str(HOSTILE), sp, ip_,
                                                 spec, ",".join(users)], stdout=subprocess.PIPE, text=True)
                    time.sleep(3)  # the attack is in full swing before we measure
                legit = Legit(smtp, imap)
                overflows0 = listen_overflows()
                cpu0 = session_cpu([p.pid for p in procs])
                legit.run(SECONDS)
                server_cpu = session_cpu([p.pid for p in procs]) - cpu0
                if attacker is not None:
                    attacker.send_signal(signal.SIGTERM)
                    out, _ = attacker.communicate(timeout=60)
                    hostile_stats.setdefault(phase, []).append(json.loads(out.strip().splitlines()[-1]))
                    time.sleep(2)
                r = {}
                for kind in ("smtp", "imap"):
                    lat = legit.lat[kind]
                    total = len(lat) + legit.fail[kind]
                    r[kind] = {"ops": total, "served": 100.0 * len(lat) / total if total else float("nan"),
                               "median": statistics.median(lat) if lat else float("nan"), "p99": p99(lat)}
                r["errors"] = legit.errors
                r["overflows"] = listen_overflows() - overflows0
                r["server_cpu"] = server_cpu / SECONDS
                results.setdefault(phase, []).append(r)
                print(f"rep {rep + 1} {phase:5}: " + "  ".join(
                    f"{k} {r[k]['ops']} ops {r[k]['served']:.1f}% served p50 {r[k]['median'] * 1000:.0f} ms "
                    f"p99 {r[k]['p99'] * 1000:.0f} ms" for k in ("smtp", "imap")) +
                    f"  server CPU {r['server_cpu']:.2f} cores, listen queue overflows {r['overflows']}" +
                    (f"  errors: {r['errors']}" if r["errors"] else ""), flush=True)
        status = subprocess.run(mk + ["status"], capture_output=True, text=True).stdout
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
    print()
    print(f"Legitimate clients ({CLIENTS}, each: SMTP delivery of 2 KB, then IMAP login+select+fetch), "
          f"{SECONDS:.0f} s per phase, {REPS} interleaved repetitions; hostile: {HOSTILE} connections.")
    print(f"{'phase':24} {'op':5} {'served % (min)':>15} {'p50 ms':>14} {'p99 ms':>22} {'p99 / quiet':>20}")
    names = {"quiet": "no attack", "v4": "40 IPv4 addresses", "v6": "one IPv6 /64"}
    for phase in ("quiet", "v4", "v6"):
        for kind in ("smtp", "imap"):
            reps = results[phase]
            served = [r[kind]["served"] for r in reps]
            med = median_range([r[kind]["median"] * 1000 for r in reps])
            p = median_range([r[kind]["p99"] * 1000 for r in reps])
            ratios = [r[kind]["p99"] / q[kind]["p99"] for r, q in zip(reps, results["quiet"])]
            rr = median_range(ratios)
            print(f"{names[phase]:24} {kind:5} {statistics.median(served):8.1f} ({min(served):5.1f}) "
                  f"{med[0]:6.0f} ({med[1]:.0f}-{med[2]:.0f}) {p[0]:8.0f} ({p[1]:.0f}-{p[2]:.0f}) "
                  f"{rr[0]:8.2f}x ({rr[1]:.2f}-{rr[2]:.2f})")
    for phase in ("quiet", "v4", "v6"):
        c = median_range([r["server_cpu"] for r in results[phase]])
        print(f"server CPU ({names[phase]}): {c[0]:.2f} cores ({c[1]:.2f}-{c[2]:.2f}) of {os.cpu_count()}")
    for phase, st in hostile_stats.items():
        print(f"hostile ({names[phase]}): " + ", ".join(
            f"{k} {statistics.median([s[k] for s in st]):.0f}" for k in st[0]) + " (medians per phase)")
    # the counters, not the hundreds of client rows
    keep = [l for l in status.splitlines() if not l.startswith(("  127.", "  2001:", "  user"))]
    print("\nmailkeep status at the end (without the client and user rows):\n" + "\n".join(keep))
    if os.environ.get("BENCH_KEEP"):
        print(f"logs kept in {work}")
    else:
        import shutil
        shutil.rmtree(work, ignore_errors=True)


main()
