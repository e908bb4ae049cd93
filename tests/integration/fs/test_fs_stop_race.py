"""The mount ends on SIGTERM at any moment of its start.

The close-event thread marks the mount for fanotify, which asks the mount's own
session loop for the root's attributes. A SIGTERM that ended the loop before it
answered left the thread waiting for ever and the stop joining it: the process
hung with its mount in place (seen once under a killed `mailkeep run`). Here the
mount is started and stopped many times with SIGTERM at varied moments around
the start; every run must end by itself and leave nothing mounted."""
import os
import random
import signal
import time

from conftest import BIN

ROUNDS = 60


def test_sigterm_during_start_never_hangs(store_users):
    m = store_users
    rng = random.Random(20261203)
    hit = 0
    for i in range(ROUNDS):
        p = m.inst.spawn(BIN / "mailkeep-fs", "-c", m.inst.conf, "-f")
        time.sleep(rng.uniform(0.0, 0.09))
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(15)
        except Exception:
            log = open(p.logfile).read()
            m.inst.stop(p, signal.SIGKILL)
            os.system(f"umount -l {m.path} 2>/dev/null")
            raise AssertionError(f"round {i}: mailkeep-fs did not end 15 s after SIGTERM\n{log}")
        assert not os.path.ismount(m.path), f"round {i}: the mount stayed after the process ended"
        if "the mount ended before close events were set up" in open(p.logfile).read():
            hit += 1
    # the window is narrow: how often it was hit is printed, not asserted
    print(f"{ROUNDS} starts and stops; {hit} ended before close events were set up")
