"""LDAP directory benchmark: a burst of recipient lookups, as a burst of
deliveries makes them, against a real slapd on 127.0.0.1.

Peer: the seed's way, one LDAP search per lookup (Postfix's proxymap and
Dovecot keep a connection open and search at every access) = mailkeep with
cache_ttl = 0. Prints searches sent and time per lookup, and the ratios.
Runs are interleaved and repeated; the median ratio is printed with min-max."""
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LDAPTESTS = HERE.parents[1] / "integration" / "ldap"
sys.path.insert(0, str(LDAPTESTS))

from ldaptest import BUILD, REPO, Probe, Slapd, cf_text  # noqa: E402

LOOKUPS = 2000
ROUNDS = 5


def build_probe(tmp):
    out = tmp / "ldap-probe"
    pkgs = "lmdb libzstd libcrypto libssl ldap lber libcrypt zlib".split()
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", *pkgs], capture_output=True, text=True, check=True)
    subprocess.run(["cc", "-std=gnu11", "-O2", "-pthread", f"-I{REPO}", str(LDAPTESTS / "ldap-probe.c"), "-o",
                    str(out), str(BUILD / "index" / "libindex.a"), str(BUILD / "lib" / "libmk.a"),
                    *pc.stdout.split(), "-lm"], check=True)
    return out


def run(probe_bin, slapd, tmp, name, **settings):
    cf = tmp / f"{name}.cf"
    cf.write_text(cf_text(slapd, **settings))
    p = Probe(probe_bin, f"ldap:{cf}", tmp / f"{name}.log")
    try:
        before = p.stats()
        answer = p("repeat", LOOKUPS, "bob@example.org")
        after = p.stats()
    finally:
        p.close()
    fields = dict(kv.split("=") for kv in answer.split()[1:])
    assert int(fields["ok"]) == LOOKUPS, answer
    return float(fields["seconds"]), int(after["searches"]) - int(before["searches"])


def main():
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        probe_bin = build_probe(tmp)
        slapd = Slapd(tmp / "slapd")
        slapd.start()
        try:
            ratios, peer_s, mk_s = [], [], []
            for i in range(ROUNDS):
                t_peer, n_peer = run(probe_bin, slapd, tmp, f"peer{i}", cache_ttl="0", negative_cache_ttl="0")
                t_mk, n_mk = run(probe_bin, slapd, tmp, f"mk{i}", cache_ttl="30s")
                peer_s.append(t_peer)
                mk_s.append(t_mk)
                ratios.append(t_mk / t_peer)
        finally:
            slapd.stop()
    med = statistics.median
    print(f"ldap: burst of {LOOKUPS} lookups of one address, {ROUNDS} interleaved rounds")
    print(f"  seed-like (search per lookup): {n_peer} searches, {med(peer_s) / LOOKUPS * 1e6:.1f} us/lookup")
    print(f"  mailkeep (cache_ttl 30s):      {n_mk} searches, {med(mk_s) / LOOKUPS * 1e6:.2f} us/lookup")
    print(f"  searches sent: mailkeep/seed = {n_mk}/{n_peer} = {n_mk / n_peer:.4f}")
    print(f"  time: mailkeep/seed = {med(ratios):.4f} (min {min(ratios):.4f}, max {max(ratios):.4f})")


if __name__ == "__main__":
    main()
