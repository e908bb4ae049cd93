"""The LDAP user directory against a real slapd: lookups, aliases, logins in
both modes, filter injection, the cache, and slapd going away and coming back."""
import re
import subprocess
import time

import pytest

from ldaptest import PEOPLE, ROOT_DN, ROOT_PW, Probe, cf_text, free_port


def fields(answer):
    assert answer.startswith("OK "), answer
    return dict(re.findall(r"(\w+)=(.*?)(?= \w+=|$)", answer[3:]))


def test_lookup_known_address(probe):
    p = probe()
    u = fields(p("lookup", "bob@example.org"))
    assert u == {"name": "bob", "mail": "bob@example.org", "uid": "10001", "gid": "10001",
                 "dn": f"cn=Bob Kelso,{PEOPLE}"}
    # addresses match case-insensitively, as the mail attribute does
    assert fields(p("lookup", "Bob@Example.ORG"))["name"] == "bob"


def test_lookup_unknown_address(probe):
    p = probe()
    assert p("lookup", "nobody@example.org") == "NOTFOUND"
    assert p("lookup", "bob@example.com") == "NOTFOUND"
    assert p("lookup", "") == "NOTFOUND"


def test_lookup_alias_addresses(probe):
    p = probe()
    assert fields(p("lookup", "robert@example.org"))["name"] == "bob"
    assert fields(p("lookup", "kelso@example.net"))["mail"] == "bob@example.org"
    # without the alias attribute configured, aliases are unknown
    q = probe(alias_attribute="")
    assert q("lookup", "robert@example.org") == "NOTFOUND"
    assert fields(q("lookup", "bob@example.org"))["name"] == "bob"


def test_get_user_and_uid_gid(probe):
    p = probe()
    for name, number in (("bob", 10001), ("alice", 10002), ("dave", 10003)):
        u = fields(p("user", name))
        assert (u["name"], u["uid"], u["gid"]) == (name, str(number), str(number))
    assert p("user", "mallory") == "NOTFOUND"


def test_ambiguous_address_is_tempfail(probe):
    # two entries claim shared@example.org: never pick one, never say "unknown"
    p = probe()
    assert p("lookup", "shared@example.org").startswith("TEMPFAIL ")
    assert fields(p("lookup", "eve1@example.org"))["name"] == "eve1"


@pytest.mark.parametrize("auth_bind", ["yes", "no"])
def test_authenticate(probe, auth_bind):
    p = probe(auth_bind=auth_bind)
    # every scheme the seed's directories hold: {SSHA} by slappasswd, {SSHA256}, {SSHA512}, {CRYPT}$6$
    assert fields(p("auth", "bob", "bobs-secret"))["name"] == "bob"
    assert fields(p("auth", "sam", "sha256 pass"))["name"] == "sam"
    assert fields(p("auth", "alice", "wonder land!"))["name"] == "alice"
    assert fields(p("auth", "dave", "open the pod bay doors"))["name"] == "dave"
    # login by address and by alias address
    assert fields(p("auth", "bob@example.org", "bobs-secret"))["name"] == "bob"
    assert fields(p("auth", "robert@example.org", "bobs-secret"))["name"] == "bob"
    assert p("auth", "bob", "bobs-secreT") == "BADPASS"
    assert p("auth", "bob", "bobs-secret ") == "BADPASS"
    assert p("auth", "alice", "wonder land") == "BADPASS"
    assert p("auth", "nobody", "whatever") == "NOTFOUND"


@pytest.mark.parametrize("auth_bind", ["yes", "no"])
def test_empty_password_refused_without_asking(probe, auth_bind):
    p = probe(auth_bind=auth_bind)
    before = p.stats()
    assert p("auth", "bob", "") == "BADPASS"
    assert p("auth", "bob@example.org", "") == "BADPASS"
    after = p.stats()
    # refused by mailkeep itself: no bind (an RFC 4513 unauthenticated bind) was sent
    assert after["binds"] == before["binds"]
    assert after["searches"] == before["searches"]


def test_unauthenticated_bind_would_succeed_at_this_server(probe):
    # proof that the empty-password check matters: this slapd (allow bind_anon_cred) accepts a DN with an
    # empty password as an anonymous (unauthenticated) bind
    s = probe.slapd
    cp = subprocess.run(["ldapwhoami", "-x", "-H", s.url, "-D", f"cn=Bob Kelso,{PEOPLE}", "-w", ""],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    assert "anonymous" in cp.stdout


@pytest.mark.parametrize("evil", [
    "*", "*@example.org", "bob@example.org)(uid=*", "*)(mail=*", "bob@example.org)(|(mail=*",
    "b*b@example.org", "\\2a@example.org", "bob\\@example.org", "*)(objectClass=*))(|(mail=*",
])
def test_filter_injection_addresses(probe, evil):
    p = probe()
    assert p("lookup", evil) == "NOTFOUND"
    assert p("auth", evil, "bobs-secret") == "NOTFOUND"


@pytest.mark.parametrize("evil", ["*", "b*", "bob)(uid=*", "*)(|(uid=*", "bob\\", "\\62ob"])
def test_filter_injection_names(probe, evil):
    p = probe()
    assert p("user", evil) == "NOTFOUND"
    assert p("auth", evil, "bobs-secret") == "NOTFOUND"


def test_escaped_characters_match_literally(probe):
    # carol's address holds * ( ) \ : escaped, it finds her and only her
    p = probe()
    assert fields(p("lookup", "c*rol(x)\\y@example.org"))["name"] == "carol"
    assert p("lookup", "c*rol(x)\\Y@example.org")[:2] == "OK"  # case-insensitive still
    assert p("lookup", "c*@example.org") == "NOTFOUND"
    assert p("lookup", "c*rol(x)*@example.org") == "NOTFOUND"


def test_list(probe):
    p = probe(list_filter="(objectClass=posixAccount)")
    answer = p("list")
    assert answer.startswith("LIST "), answer
    assert sorted(answer[5:].split(",")) == sorted(["bob", "alice", "dave", "sam", "carol", "eve1", "eve2"])


def test_cache_spares_the_server(probe):
    p = probe(cache_ttl="60s", negative_cache_ttl="60s")
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
    assert p("lookup", "nobody@example.org") == "NOTFOUND"
    s1 = p.stats()
    for _ in range(50):
        assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
        assert fields(p("lookup", "BOB@example.org"))["name"] == "bob"
        assert p("lookup", "nobody@example.org") == "NOTFOUND"
    s2 = p.stats()
    assert s2["searches"] == s1["searches"]
    assert int(s2["cache_hits"]) - int(s1["cache_hits"]) == 150


def test_cache_expires(probe):
    s = probe.slapd
    p = probe(cache_ttl="1s", negative_cache_ttl="1s")
    assert p("lookup", "new@example.org") == "NOTFOUND"
    s.modify(f"dn: cn=New Person,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
             "cn: New Person\nsn: Person\nuid: new\nuidNumber: 10100\ngidNumber: 10100\n"
             "homeDirectory: /home/new\nmail: new@example.org\n", add=True)
    # within the negative TTL the old answer stands ...
    assert p("lookup", "new@example.org") == "NOTFOUND"
    time.sleep(1.3)
    # ... after it, the new user is found
    assert fields(p("lookup", "new@example.org"))["uid"] == "10100"
    s.modify(f"dn: cn=New Person,{PEOPLE}\nchangetype: modify\nreplace: uidNumber\nuidNumber: 10200\n")
    assert fields(p("lookup", "new@example.org"))["uid"] == "10100"
    time.sleep(1.3)
    assert fields(p("lookup", "new@example.org"))["uid"] == "10200"


def test_no_cache(probe):
    p = probe(cache_ttl="0", negative_cache_ttl="0")
    s1 = p.stats()
    for _ in range(5):
        assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
    assert int(p.stats()["searches"]) - int(s1["searches"]) == 5


def test_slapd_down_then_up(probe):
    s = probe.slapd
    p = probe(cache_ttl="1s", negative_cache_ttl="1s")
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
    assert fields(p("auth", "bob", "bobs-secret"))["name"] == "bob"
    s.stop()
    time.sleep(1.2)  # past the cache TTL
    # never "unknown", never "bad password": temporary failures
    for cmd in (("lookup", "bob@example.org"), ("lookup", "nobody@example.org"), ("user", "alice"),
                ("auth", "bob", "bobs-secret"), ("auth", "bob", "wrong"), ("list",)):
        assert p(*cmd).startswith("TEMPFAIL "), cmd
    s.start()
    # reconnects by itself
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
    assert p("lookup", "nobody@example.org") == "NOTFOUND"
    assert fields(p("auth", "bob", "bobs-secret"))["name"] == "bob"
    assert p("auth", "bob", "wrong") == "BADPASS"
    assert p("list").startswith("LIST ")


def test_slapd_restart_between_calls(probe):
    # the kept connection dies under us: the call retries on a fresh one
    s = probe.slapd
    for mode in ("yes", "no"):
        p = probe(cache_ttl="0", negative_cache_ttl="0", auth_bind=mode)
        assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
        assert fields(p("auth", "bob", "bobs-secret"))["name"] == "bob"
        s.stop()
        s.start()
        assert fields(p("lookup", "alice@example.org"))["name"] == "alice"
        s.stop()
        s.start()
        assert fields(p("auth", "alice", "wonder land!"))["name"] == "alice"


def test_down_at_start(probe, probe_bin, tmp_path):
    s = probe.slapd
    s.stop()
    p = probe()
    assert p("lookup", "bob@example.org").startswith("TEMPFAIL ")
    s.start()
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"


def test_failover_to_second_server(probe, tmp_path):

    dead = free_port()
    s = probe.slapd
    p = probe(server_host=f"127.0.0.1:{dead}, ldap://127.0.0.1:{s.port}")
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
    q = probe(server_host=f"127.0.0.1:{dead}")
    assert q("lookup", "bob@example.org").startswith("TEMPFAIL ")


def test_wrong_reader_password_is_tempfail(probe):
    p = probe(bind_pw="not-the-password")
    assert p("lookup", "bob@example.org").startswith("TEMPFAIL ")
    assert p("auth", "bob", "bobs-secret").startswith("TEMPFAIL ")


def test_compare_mode_needs_read_right(probe):
    # anonymous search can see the entry but not userPassword: logins fail, no crash
    p = probe(auth_bind="no", bind_dn=f"cn=Bob Kelso,{PEOPLE}", bind_pw="bobs-secret")
    assert p("auth", "alice", "wonder land!") == "BADPASS"


def test_threads(probe):
    p = probe(cache_ttl="0", negative_cache_ttl="0", max_connections="3")
    answer = p("threads", 8, 20)
    assert answer == f"THREADS ok={8 * 20 * 7} wrong=0 tempfail=0", answer


def test_threads_with_restart(probe):
    # slapd restarts while eight threads hammer it: every answer is right or a
    # temporary failure, never a wrong one
    import threading
    s = probe.slapd
    p = probe(cache_ttl="0", negative_cache_ttl="0", max_connections="4")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("a", p("threads", 8, 60)))
    t.start()
    time.sleep(0.3)
    s.stop()
    s.start()
    t.join(120)
    m = re.fullmatch(r"THREADS ok=(\d+) wrong=(\d+) tempfail=(\d+)", out["a"])
    assert m, out
    assert int(m.group(2)) == 0
    assert int(m.group(1)) + int(m.group(3)) == 8 * 60 * 7
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"


def test_settings_in_mailkeep_conf(probe_bin, slapd, tmp_path):
    conf = tmp_path / "mailkeep.conf"
    conf.write_text("".join(f"ldap_{line}\n" for line in cf_text(slapd).splitlines()))
    p = Probe(probe_bin, "ldap", tmp_path / "probe.log", conf=conf)
    try:
        assert fields(p("lookup", "robert@example.org"))["name"] == "bob"
    finally:
        p.close()


@pytest.mark.parametrize("bad, message", [
    ({"scope": "deep"}, "scope"),
    ({"query_filter": "(mail=%x)"}, "query_filter"),
    ({"query_filter": "mail=%s"}, "query_filter"),
    ({"server_host": ""}, "server_host"),
    ({"server_host": "http://example.org"}, "server_host"),
    ({"search_base": ""}, "search_base"),
    ({"auth_bind": "no", "bind_dn": ""}, "auth_bind"),
    ({"alias_attribute": "mail)(uid=*"}, "alias_attribute"),
])
def test_bad_settings_refused(probe, bad, message):
    answer = probe(**bad).proc.stdout.readline()
    assert answer.startswith("OPENFAIL ") and message in answer, answer


def test_relative_cf_under_config_directory(probe_bin, slapd, tmp_path):
    (tmp_path / "ldap-users.cf").write_text(cf_text(slapd))
    conf = tmp_path / "mailkeep.conf"
    conf.write_text(f"config_directory = {tmp_path}\n")
    p = Probe(probe_bin, "ldap:ldap-users.cf", tmp_path / "probe.log", conf=conf)
    try:
        assert fields(p("user", "dave"))["mail"] == "dave@example.org"
    finally:
        p.close()


def test_hung_server_times_out(probe):
    # slapd frozen (SIGSTOP): the kernel still accepts connections, nothing
    # answers; the call gives up after the timeout with a temporary failure
    import os
    import signal
    s = probe.slapd
    p = probe(timeout="1s", cache_ttl="0", negative_cache_ttl="0")
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
    os.kill(s.proc.pid, signal.SIGSTOP)

    def all_stopped():
        tasks = os.listdir(f"/proc/{s.proc.pid}/task")
        return all(open(f"/proc/{s.proc.pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()[0] == "T"
                   for t in tasks)

    deadline = time.monotonic() + 10
    while not all_stopped():
        assert time.monotonic() < deadline, "slapd did not stop"
        time.sleep(0.01)
    try:
        assert p("lookup", "bob@example.org").startswith("TEMPFAIL ")
        # for the next `timeout` seconds calls fail at once, without waiting for slapd again
        before = p.stats()
        answer = p("auth", "bob", "bobs-secret")
        assert answer.startswith("TEMPFAIL ") and "next try in" in answer, answer
        assert p("lookup", "alice@example.org").startswith("TEMPFAIL ")
        after = p.stats()
        for k in ("searches", "binds", "connects"):
            assert after[k] == before[k], k
        assert int(after["failures"]) == int(before["failures"]) + 2
    finally:
        os.kill(s.proc.pid, signal.SIGCONT)
    time.sleep(1.2)  # the hold-back is over
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
    assert fields(p("auth", "bob", "bobs-secret"))["name"] == "bob"


def test_list_past_the_server_size_limit(probe_bin, tmp_path):
    # slapd answers at most 500 entries per search (sizelimit 500): the list
    # comes a page at a time, all 620 + the seed's users
    from ldaptest import Slapd, base_ldif
    bulk = "".join(f"dn: uid=user{i:04d},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                   f"cn: User {i}\nsn: {i}\nuid: user{i:04d}\nuidNumber: {20000 + i}\ngidNumber: 20000\n"
                   f"homeDirectory: /home/user{i:04d}\nmail: user{i:04d}@example.org\n\n" for i in range(620))
    s = Slapd(tmp_path / "big", ldif=base_ldif() + bulk)
    s.start()
    try:
        cf = tmp_path / "big.cf"
        cf.write_text(cf_text(s))
        p = Probe(probe_bin, f"ldap:{cf}", tmp_path / "big.log")
        try:
            answer = p("list")
            assert answer.startswith("LIST "), answer
            names = answer[5:].split(",")
            assert len(names) == 620 + 7 and len(set(names)) == len(names)
            assert "user0619" in names and "bob" in names
            assert int(p.stats()["searches"]) >= 4  # pages of 200
        finally:
            p.close()
    finally:
        s.stop()


def test_down_logged_once_not_per_call(probe):
    s = probe.slapd
    p = probe(cache_ttl="0", negative_cache_ttl="0")
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
    s.stop()
    for _ in range(30):
        assert p("lookup", "bob@example.org").startswith("TEMPFAIL ")
    s.start()
    assert fields(p("lookup", "bob@example.org"))["name"] == "bob"
    log = p.close()
    assert log.count("warning: ldap:") == 1, log
    assert "ldap: the server answers again (29 failures were not logged)" in log, log


@pytest.mark.parametrize("auth_bind", ["yes", "no"])
def test_user_deleted_while_cached(probe, auth_bind):
    # the DN comes from the cache, the entry is gone: a failed login, not a temporary failure
    s = probe.slapd
    p = probe(auth_bind=auth_bind, cache_ttl="60s")
    assert fields(p("user", "sam"))["name"] == "sam"
    subprocess.run(["ldapdelete", "-x", "-H", s.url, "-D", ROOT_DN, "-w", ROOT_PW, f"cn=Sam Sha,{PEOPLE}"],
                   check=True, capture_output=True)
    assert p("auth", "sam", "sha256 pass") in ("NOTFOUND", "BADPASS")
    assert fields(p("auth", "bob", "bobs-secret"))["name"] == "bob"
