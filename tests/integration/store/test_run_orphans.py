"""`mailkeep run` and its instance's processes (issue 13.7): services end with
a supervisor killed by SIGKILL (and the mount goes with them); a new `run`
stops services of the same instance left running, refuses while another
`run` of it is alive, and names a foreign process holding one of its ports
instead of looping on "Address already in use"."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mkhelpers import BIN, free_port, wait_for, wait_port

SERVICES = ("mailkeep-smtpin", "mailkeep-smtpout", "mailkeep-imapd", "mailkeep-fs")
# the kernel's comm is cut at 15 bytes
COMMS = tuple(s[:15] for s in SERVICES)

if not all((BIN / b).exists() for b in SERVICES):
    pytest.skip("the services are not built", allow_module_level=True)


def children(pid):
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return {}
    out = {}
    for k in kids:
        try:
            out[Path(f"/proc/{k}/comm").read_text().strip()] = int(k)
        except OSError:
            pass
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for us
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def mounted(path):
    real = os.path.realpath(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == real:
            return True
    return False


@pytest.fixture
def ports(instance):
    smtp, imap, imaps = free_port(), free_port(), free_port()
    instance.write_conf(smtpd_listen=f"127.0.0.1:{smtp}", lmtp_listen=f"unix:{instance.data}/run/lmtp",
                        imapd_listen=f"127.0.0.1:{imap}", imapd_tls_listen=f"127.0.0.1:{imaps}")
    return smtp, imap, imaps


def start_run(instance, ports):
    p = instance.spawn(BIN / "mailkeep", "-c", instance.conf, "run")
    for port in ports:
        wait_port(port, proc=p, timeout=20)
    wait_for(lambda: os.path.ismount(instance.root / "mail"), timeout=20, what="the mount")
    wait_for(lambda: set(children(p.pid)) == set(COMMS), timeout=10, what="four services")
    return p


def test_services_and_mount_end_with_a_killed_run(instance, ports):
    p = start_run(instance, ports)
    kids = children(p.pid)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    # PR_SET_PDEATHSIG: every service gets SIGTERM and stops by itself
    wait_for(lambda: not any(alive(k) for k in kids.values()), timeout=15,
             what=f"the services {kids} to end after their supervisor")
    assert not mounted(instance.root / "mail")
    # and a new run starts at once, on the same ports
    p2 = start_run(instance, ports)
    assert "Address already in use" not in Path(p2.logfile).read_text()
    instance.stop(p2)
    assert p2.returncode == 0
    assert not mounted(instance.root / "mail")
    assert not (instance.data / "run" / "mailkeep.pid").exists()


def test_run_stops_a_leftover_service_of_its_instance(instance, ports):
    smtp = ports[0]
    # an smtpin of this instance started by hand (or left by an old supervisor): it holds the port
    old = instance.spawn(BIN / "mailkeep-smtpin", "-c", instance.conf, "-f")
    wait_port(smtp, proc=old)
    # and a mount left behind, known from the pid file a dead `run` wrote
    mnt = instance.root / "mail"
    fs = instance.spawn(BIN / "mailkeep-fs", "-c", instance.conf, "-f")
    wait_for(lambda: os.path.ismount(mnt), timeout=20, what="the mount")
    (instance.data / "run").mkdir(exist_ok=True)
    (instance.data / "run" / "run.mailkeep-fs.pid").write_text(f"{fs.pid}\n")
    t0 = time.monotonic()
    p = start_run(instance, ports)
    assert old.wait(15) is not None and fs.wait(15) is not None
    log = Path(p.logfile).read_text()
    assert f"mailkeep-smtpin (pid {old.pid}) of this instance is still running (found by its -c argument)" in log, log
    assert f"mailkeep-fs (pid {fs.pid}) of this instance is still running" in log, log
    assert "Address already in use" not in log
    assert children(p.pid)["mailkeep-smtpin"] != old.pid
    assert time.monotonic() - t0 < 30
    # the run's own smtpin serves
    cp = subprocess.run(["swaks", "--server", f"127.0.0.1:{smtp}", "--to", "postmaster", "--quit-after", "MAIL"],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stdout
    instance.stop(p)


def test_run_stops_a_mount_started_by_hand(instance, ports):
    """No pid file, no port: a mailkeep-fs of this instance is found by its
    command line and stopped; the new run mounts again."""
    instance.mk("user", "add", "bob", "--no-password")  # a store to mount
    mnt = instance.root / "mail"
    fs = instance.spawn(BIN / "mailkeep-fs", "-c", instance.conf, "-f")
    wait_for(lambda: os.path.ismount(mnt), timeout=20, what="the mount")
    p = start_run(instance, ports)
    assert fs.wait(15) is not None
    assert f"mailkeep-fs (pid {fs.pid}) of this instance is still running (found by its -c argument)" in \
        Path(p.logfile).read_text()
    assert children(p.pid)["mailkeep-fs"] != fs.pid
    instance.stop(p)
    assert not mounted(mnt)


def test_second_run_of_the_instance_is_refused(instance, ports):
    p = start_run(instance, ports)
    cp = subprocess.run([str(BIN / "mailkeep"), "-c", str(instance.conf), "run"], capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 1
    assert f"mailkeep run is already running for {instance.conf} (pid {p.pid}" in cp.stderr, cp.stderr
    # the first one is untouched
    assert set(children(p.pid)) == set(COMMS)
    instance.stop(p)


def test_a_foreign_port_holder_is_named_not_looped_on(instance, ports):
    smtp = ports[0]
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", smtp))
    squatter.listen(1)
    try:
        t0 = time.monotonic()
        cp = subprocess.run([str(BIN / "mailkeep"), "-c", str(instance.conf), "run"], capture_output=True,
                            text=True, timeout=30)
        assert time.monotonic() - t0 < 10
        assert cp.returncode == 1
        assert (f"smtpd_listen = 127.0.0.1:{smtp}: port {smtp} is in use by pid {os.getpid()}"
                in cp.stderr), cp.stderr
        assert "not a service of this instance" in cp.stderr
        assert not mounted(instance.root / "mail")
    finally:
        squatter.close()
