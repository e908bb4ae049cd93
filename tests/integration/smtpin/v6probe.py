"""Run inside a network namespace of its own (`unshare -n`, see
test_ipv6_net.py): lo up, 2001:db8:5:6::/64 and 2001:db8:5:7::/64 routed to
lo as local (AnyIP), mailkeep-smtpin and mailkeep-imapd on [::1]. Opens
connections from many addresses of one /64 to both services and prints what
each got, as JSON.

    python3 v6probe.py BIN CONF SMTP_PORT IMAP_PORT
"""
import json
import socket
import subprocess
import sys
import time

IP_FREEBIND = 15

bin_dir, conf, smtp_port, imap_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
for net in ("2001:db8:5:6::/64", "2001:db8:5:7::/64"):
    subprocess.run(["ip", "-6", "route", "add", "local", net, "dev", "lo"], check=True)

procs = []
for name in ("mailkeep-smtpin", "mailkeep-imapd"):
    log = open(f"{conf}.{name}.log", "wb")
    procs.append(subprocess.Popen([f"{bin_dir}/{name}", "-c", conf, "-f"], stdout=log, stderr=subprocess.STDOUT))


def wait(port):
    for _ in range(200):
        try:
            socket.create_connection(("::1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on [::1]:{port}")


def connect(source, port):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("::1", port))
    f = s.makefile("rb")
    try:
        first = f.readline().decode(errors="replace").strip()
    except (ConnectionResetError, socket.timeout):
        first = ""
    return s, first


out = {}
try:
    wait(smtp_port)
    wait(imap_port)
    held = []
    # 3 SMTP + 3 IMAP connections from six addresses of one /64 (limit: 5, counted together)
    results = []
    for i in range(1, 4):
        s, first = connect(f"2001:db8:5:6::{i}", smtp_port)
        held.append(s)
        results.append(["smtp", f"2001:db8:5:6::{i}", first])
    for i in range(1, 4):
        s, first = connect(f"2001:db8:5:6:{i}::{i}", imap_port)
        held.append(s)
        results.append(["imap", f"2001:db8:5:6:{i}::{i}", first])
    # the next /64 is another client
    s, first = connect("2001:db8:5:7::1", smtp_port)
    held.append(s)
    results.append(["smtp", "2001:db8:5:7::1", first])
    out["results"] = results
    out["status"] = subprocess.run([f"{bin_dir}/mailkeep", "-c", conf, "status"], capture_output=True,
                                   text=True).stdout
    for s in held:
        s.close()
finally:
    for p in procs:
        p.terminate()
        p.wait(15)
print(json.dumps(out))
