#!/bin/sh
# The imapd benchmark: mailkeep-imapd against Debian's Dovecot (dovecot-imapd),
# both started here on 127.0.0.1 with their own config under a temp dir, loaded
# with the same corpus messages over IMAP, then driven by the same load
# generator (imapload.c) with N concurrent clients per mix:
#   select fetch store search append idle resync mixed
# Servers run interleaved, REPS times per mix; the script prints each run and,
# per mix, the median ratio (mailkeep / dovecot for ops/s; dovecot / mailkeep
# for latency, so > 1 means mailkeep is better) with min-max.
# Bounded: SECS seconds per run (default 4), REPS runs (default 3), CLIENTS
# (default 8), MESSAGES corpus messages (default 2000).
set -eu
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${MAILKEEP_BUILD:-$REPO/build}
SECS=${SECS:-4}
REPS=${REPS:-3}
CLIENTS=${CLIENTS:-8}
MESSAGES=${MESSAGES:-2000}
MIXES=${MIXES:-"select fetch store search append idle resync mixed"}
CORPUS=${MAILKEEP_CORPUS:-$REPO/../shared/corpus/spamassassin}
[ -d "$CORPUS" ] || CORPUS=/work/shared/corpus/spamassassin
DOVECOT=${DOVECOT:-/usr/sbin/dovecot}
[ -x "$DOVECOT" ] || { echo "imapd bench: $DOVECOT not found (apt-get install dovecot-imapd)"; exit 1; }
[ -x "$BUILD/bin/mailkeep-imapd" ] || { echo "imapd bench: build first (make)"; exit 1; }

T=$(mktemp -d /tmp/mk-imapd-bench.XXXXXX)
MKPID=""; DVPID=""
cleanup() {
	[ -n "$MKPID" ] && kill "$MKPID" 2>/dev/null || true
	[ -n "$DVPID" ] && kill "$DVPID" 2>/dev/null || true
	sleep 0.5
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	i=0
	while ! python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),timeout=0.5)" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "imapd bench: nothing on port $1"; exit 1; }; sleep 0.1
	done
}

PKGS="lmdb libcrypto libssl libevent libevent_openssl libevent_pthreads ldap lber libetpan zlib libcrypt"
cc -O2 -pthread -o "$T/imapload" "$REPO/tests/bench/imapd/imapload.c"
cc -std=gnu11 -O1 -I"$REPO" -o "$T/mkuser" "$REPO/tests/integration/imapd/mkuser.c" \
	"$BUILD/index/libindex.a" "$BUILD/lib/libmk.a" $(pkg-config --libs $PKGS) -pthread -lm

# --- mailkeep ---------------------------------------------------------------
MKPORT=$(free_port)
mkdir -p "$T/mk/data"
cat > "$T/mk/mailkeep.conf" <<CONF
config_directory = $T/mk
data_directory = $T/mk/data
log_target = stderr
imapd_listen = 127.0.0.1:$MKPORT
imapd_tls_listen =
imap_max_commands_per_second = 1000000
CONF
# The same password hash for both servers ({SSHA512}: both verify it the same
# cheap way), so a login costs the same work on each side.
PWHASH=$(python3 -c 'import base64,hashlib,os; s=os.urandom(8); print("{SSHA512}"+base64.b64encode(hashlib.sha512(b"benchpw"+s).digest()+s).decode())')
"$T/mkuser" "$T/mk/data/store" alice "$PWHASH"
"$BUILD/bin/mailkeep-imapd" -c "$T/mk/mailkeep.conf" -f >"$T/mk/imapd.log" 2>&1 &
MKPID=$!

# --- dovecot ----------------------------------------------------------------
DVPORT=$(free_port)
mkdir -p "$T/dv/run" "$T/dv/home"
chmod 755 "$T" "$T/dv" "$T/dv/home"
# Dovecot refuses to run mail processes as root: the mail belongs to nobody.
MYUID=$(id -u nobody); MYGID=$(id -g nobody)
chown -R "$MYUID:$MYGID" "$T/dv/home"
echo "alice:$PWHASH:$MYUID:$MYGID::$T/dv/home/alice" > "$T/dv/passwd"
cat > "$T/dv/dovecot.conf" <<CONF
base_dir = $T/dv/run
state_dir = $T/dv/state
log_path = $T/dv/dovecot.log
instance_name = mk-bench-$$
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_uid = $MYUID
mail_gid = $MYGID
passdb {
  driver = passwd-file
  args = $T/dv/passwd
}
userdb {
  driver = passwd-file
  args = $T/dv/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DVPORT
  }
  inet_listener imaps {
    port = 0
  }
  process_min_avail = 2
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
namespace inbox {
  inbox = yes
  separator = .
}
protocol imap {
  mail_max_userip_connections = 1000
}
CONF
"$DOVECOT" -F -c "$T/dv/dovecot.conf" >"$T/dv/stdout.log" 2>&1 &
DVPID=$!
wait_port "$MKPORT"
wait_port "$DVPORT"

# --- the same messages in both ---------------------------------------------------
find "$CORPUS" -type f ! -name README.md | sort | head -n "$MESSAGES" > "$T/files"
echo "imapd bench: loading $(wc -l < "$T/files") messages into each server"
"$T/imapload" load "$MKPORT" alice benchpw INBOX < "$T/files" | sed 's/^/  mailkeep: /'
"$T/imapload" load "$DVPORT" alice benchpw INBOX < "$T/files" | sed 's/^/  dovecot:  /'

echo "imapd bench: $CLIENTS clients, $SECS s per run, $REPS runs per mix and server (interleaved)"
: > "$T/results"
for mix in $MIXES; do
	r=1
	while [ $r -le "$REPS" ]; do
		for srv in mailkeep dovecot; do
			if [ $srv = mailkeep ]; then p=$MKPORT; else p=$DVPORT; fi
			line=$("$T/imapload" run "$p" alice benchpw "$mix" "$CLIENTS" "$SECS")
			echo "  $mix run $r $srv: $line"
			echo "$mix $srv $line" >> "$T/results"
		done
		r=$((r + 1))
	done
done

python3 - "$T/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mix, srv, *kv = line.split()
    d = dict(x.split("=") for x in kv)
    rows.setdefault((mix, srv), []).append({k: float(v) for k, v in d.items()})
print("\nimapd bench: ratios (median over runs, [min-max]); > 1 means mailkeep is better")
print(f"{'mix':8} {'ops/s mk':>10} {'ops/s dv':>10} {'ops/s ratio':>20} {'p50 ratio':>18} {'p99 ratio':>18}  errors mk/dv")
mixes = []
for (mix, _) in rows:
    if mix not in mixes:
        mixes.append(mix)
for mix in mixes:
    mk, dv = rows[(mix, "mailkeep")], rows[(mix, "dovecot")]
    def ratio(key, invert):
        rs = []
        for a, b in zip(mk, dv):
            if invert:
                rs.append(b[key] / a[key] if a[key] else float("inf"))
            else:
                rs.append(a[key] / b[key] if b[key] else float("inf"))
        return f"{statistics.median(rs):.2f} [{min(rs):.2f}-{max(rs):.2f}]"
    print(f"{mix:8} {statistics.median(r['ops_per_s'] for r in mk):10.1f} {statistics.median(r['ops_per_s'] for r in dv):10.1f} "
          f"{ratio('ops_per_s', False):>20} {ratio('p50_ms', True):>18} {ratio('p99_ms', True):>18}  "
          f"{int(sum(r['errors'] for r in mk))}/{int(sum(r['errors'] for r in dv))}")
PY
