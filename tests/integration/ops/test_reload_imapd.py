"""SIGHUP to mailkeep-imapd (issue 19): the file is read and checked again; a
broken one is refused with file:line; logging changes are taken; every other
changed setting is named as waiting for a restart, with the value in use."""
import os
import re
import signal
from pathlib import Path

from mkhelpers import BIN, free_port, wait_log, wait_port


def test_imapd_reload_takes_logging_names_the_rest_and_refuses_a_broken_file(instance):
    port, tport = free_port(), free_port()
    instance.write_conf(imapd_listen=f"127.0.0.1:{port}", imapd_tls_listen=f"127.0.0.1:{tport}")
    p = instance.spawn(BIN / "mailkeep-imapd", "-c", instance.conf, "-f")
    wait_port(port, proc=p)
    log = lambda: Path(p.logfile).read_text(errors="replace")  # noqa: E731
    instance.write_conf(syslog_name="mk-imap-reloaded", imap_client_timeout="45m")
    os.kill(p.pid, signal.SIGHUP)
    wait_log(log, r"SIGHUP: configuration reloaded: logging")
    assert re.search(r"imap_client_timeout changed to \"45m\": that takes a restart of mailkeep-imapd "
                     r".*is used until then", log())
    assert "syslog_name changed" not in log()
    wait_log(log, r"mk-imap-reloaded/imapd\[\d+\]: ")  # the next lines carry the new name
    good = instance.conf.read_text()
    instance.conf.write_text(good + "imap_max_line_length = many\n")
    os.kill(p.pid, signal.SIGHUP)
    n = len(good.splitlines()) + 1
    wait_log(log, rf"configuration not reloaded: {re.escape(str(instance.conf))}:{n}: ")
    assert p.poll() is None
    instance.stop(p)
