"""`mailkeep stats --smtp`: the postscreen-style summary read from smtpin's log."""
import re


def test_stats_smtp_summary(smtpin_factory, raw):
    s = smtpin_factory(postscreen_greet_action="drop", postscreen_greet_wait="1s")
    s.useradd("bob")
    s.start()
    r = raw(s.port, source="127.0.0.2")
    r.send("EHLO bot.example.com\r\n")
    r.reply()
    r.closed()
    assert s.swaks("--to", "bob@example.org").returncode == 0
    assert s.swaks("--to", "x@elsewhere.example").returncode != 0
    assert s.swaks("--to", "ghost@example.org").returncode != 0
    s.wait_log(r"PREGREET")
    cp = s.inst.mk("stats", "--smtp", s.proc.logfile)
    out = cp.stdout
    assert re.search(r"^connections [4-9]", out, re.M), out
    assert re.search(r"^delivered 1$", out, re.M), out
    assert re.search(r"^rejected 2$", out, re.M), out
    assert re.search(r"^\s+1\s+PREGREET$", out, re.M), out
    assert re.search(r"^\s+1\s+554 Relay access denied$", out, re.M), out
    assert re.search(r"^\s+1\s+550 User unknown in local recipient table$", out, re.M), out
    assert re.search(r"^\s+2\s+unknown\[127\.0\.0\.1\]$", out, re.M), out
