"""SIGHUP reloads smtpin's settings without a restart (issue 19): a change
takes effect on the next connection (and the next command of a session that
was open), all at once; a broken configuration is refused with file:line and
the running one stays; settings that need a restart are named in the log and
keep their running value. The same pid serves throughout."""
import os
import re
import signal

from mkhelpers import wait_log


def hup(s):
    n = s.log().count("SIGHUP: reading")
    os.kill(s.proc.pid, signal.SIGHUP)
    wait_log(lambda: str(s.log().count("SIGHUP: reading")), f"^{n + 1}$")
    # the outcome line follows the reading line
    return s.wait_log(r"SIGHUP: configuration (reloaded from|not reloaded: )[^\n]*\n(?![\s\S]*SIGHUP: reading)")


def rcpt(raw, s, to="bob@example.org", helo=True):
    c = raw(s.port)
    assert c.reply().startswith("220")
    if helo:
        assert c.cmd("EHLO client.example.net").startswith("250")
    assert c.cmd("MAIL FROM:<a@sender.example.net>").startswith("250")
    return c, c.cmd(f"RCPT TO:<{to}>")


def test_greylisting_switched_on_by_sighup_applies_to_the_next_connection(smtpin_factory, raw):
    s = smtpin_factory(mynetworks="10.255.255.0/24", smtpd_recipient_restrictions="reject_unauth_destination")
    s.useradd("bob")
    s.start()
    pid = s.proc.pid
    c, r = rcpt(raw, s)
    assert r.startswith("250"), r
    open_session = c  # a session open across the reload
    s.configure(smtpd_recipient_restrictions="reject_unauth_destination, check_greylist",
                greylist_text="Greylisted by the new settings")
    m = hup(s)
    assert "configuration reloaded" in m.group(0)
    _, r = rcpt(raw, s)
    assert r.startswith("450") and "Greylisted by the new settings" in r, r
    # the open session's next command meets the new lists too
    r = open_session.cmd("RCPT TO:<bob@example.org>")
    assert r.startswith("450") and "Greylisted by the new settings" in r, r
    assert s.proc.pid == pid and s.proc.poll() is None


def test_a_broken_configuration_is_refused_with_file_and_line_and_the_old_one_stays(smtpin_factory, raw):
    s = smtpin_factory(mynetworks="10.255.255.0/24", smtpd_recipient_restrictions="reject_unauth_destination")
    s.useradd("bob")
    s.start()
    good = s.inst.conf.read_text()
    # 1. a restriction that does not exist: the line of the setting is named
    s.configure(smtpd_recipient_restrictions="reject_unauth_destination, check_greylist, reject_everything_now")
    line = next(i for i, ln in enumerate(s.inst.conf.read_text().splitlines(), 1)
                if ln.startswith("smtpd_recipient_restrictions"))
    m = hup(s)
    assert f"configuration not reloaded: {s.inst.conf}:{line}: smtpd_recipient_restrictions" in m.group(0), m.group(0)
    assert "the one loaded before stays" in m.group(0)
    _, r = rcpt(raw, s)
    assert r.startswith("250"), r  # no greylisting: nothing of the broken file was taken
    # 2. a value out of its type, and a line that does not parse
    s.inst.conf.write_text(good + "message_size_limit = lots\n")
    m = hup(s)
    n = len(good.splitlines()) + 1
    assert f"configuration not reloaded: {s.inst.conf}:{n}: " in m.group(0) and "message_size_limit" in m.group(0)
    s.inst.conf.write_text(good + "this line has no equals sign\n")
    m = hup(s)
    assert f"configuration not reloaded: {s.inst.conf}:{n}: " in m.group(0), m.group(0)
    # 3. a cidr table that is missing: all or nothing, the greylisting asked
    # for beside it is not taken either
    s.inst.conf.write_text(good)
    s.configure(smtpd_recipient_restrictions=f"check_greylist, check_client_access cidr:{s.inst.root}/nope.cidr")
    m = hup(s)
    assert "configuration not reloaded" in m.group(0) and "nope.cidr" in m.group(0)
    _, r = rcpt(raw, s)
    assert r.startswith("250"), r
    # and a good one after all that is taken
    s.configure(smtpd_recipient_restrictions="reject_unauth_destination, check_greylist")
    assert "configuration reloaded" in hup(s).group(0)
    _, r = rcpt(raw, s)
    assert r.startswith("450"), r


def test_postscreen_limits_and_logging_reload_and_restart_settings_are_named(smtpin_factory, raw, tmp_path):
    s = smtpin_factory(mynetworks="10.255.255.0/24", smtpd_recipient_restrictions="reject_unauth_destination")
    s.useradd("bob")
    s.useradd("alice")
    s.start()
    c, r = rcpt(raw, s)
    assert c.cmd("RCPT TO:<alice@example.org>").startswith("250")
    deny = tmp_path / "deny.cidr"
    deny.write_text("127.0.0.1/32 reject\n")
    old_port = s.port
    s.configure(postscreen_access_list=f"cidr:{deny}", postscreen_denylist_action="drop",
                postscreen_pipelining_enable="yes",
                smtpd_recipient_limit="1", syslog_name="mk-reloaded",
                smtpd_listen=f"127.0.0.1:{old_port} 127.0.0.1:1",
                smtpd_delivery_threads="3")
    m = hup(s)
    assert "configuration reloaded" in m.group(0)
    log = s.log()
    assert re.search(r"smtpd_listen changed to \"127\.0\.0\.1:\d+ 127\.0\.0\.1:1\": that takes a restart of "
                     r"mailkeep-smtpin .*\"127\.0\.0\.1:\d+\" is used until then", log), log[-2000:]
    assert "smtpd_delivery_threads changed to \"3\"" in log
    # postscreen: the access list is new -> DENYLISTED, dropped
    c2 = raw(s.port)
    r = c2.reply()
    assert r.startswith("521 5.3.2") and "Service currently unavailable" in r, r
    assert c2.closed()
    s.wait_log(r"mk-reloaded/postscreen\[\d+\]: DENYLISTED")  # logging: the new syslog_name
    # limits: one recipient per message now (the session open before too)
    deny.write_text("")
    s.configure(postscreen_access_list="")
    assert "configuration reloaded" in hup(s).group(0)
    c3, r = rcpt(raw, s)
    assert r.startswith("250")
    r = c3.cmd("RCPT TO:<alice@example.org>")
    assert r.startswith("452") and "too many recipients" in r, r
