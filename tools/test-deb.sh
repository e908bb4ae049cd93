#!/bin/sh
# The Debian package on a clean Debian 12, with systemd as PID 1: builds the
# .deb (tools/build-deb.sh: dpkg-buildpackage, lintian), makes a minimal
# Debian 12 with debootstrap (kept in build/debian12-base for the next run),
# installs the package in a copy with apt (which brings its dependencies),
# boots the copy with systemd-nspawn (systemd as PID 1, a private network:
# port 25 is free in there) and checks, inside, as an administrator would:
# both units active (Type=notify: active means READY=1 came), a user, mail
# through SMTP on port 25, IMAP on 993 with TLS, the mail on the mount, the
# metrics endpoint, `systemctl reload` taking a change and refusing a broken
# file, `systemctl stop` taking the mount down. Needs root, network access
# to Debian's mirror (debootstrap, apt) and about 5 minutes the first time.
#
#   tools/test-deb.sh [DEB]        (default: build it)
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
BASE=${MAILKEEP_DEB_BASE:-$REPO/build/debian12-base}
MIRROR=${MAILKEEP_DEB_MIRROR:-http://deb.debian.org/debian}
WORK=$(mktemp -d /tmp/mailkeep-deb.XXXXXX)
ROOT="$WORK/root"
LOG="$WORK/nspawn.log"
NSPAWN=
say() { printf 'test-deb: %s\n' "$*"; }
fail() {
	say "FAILED: $*"
	[ -f "$LOG" ] && tail -n 30 "$LOG" | sed 's/^/  console: /'
	[ -n "${LEADER:-}" ] && in_ct journalctl --no-pager -n 60 2>/dev/null | sed 's/^/  journal: /'
	exit 1
}
cleanup() {
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		[ -n "${LEADER:-}" ] && in_ct systemctl poweroff >/dev/null 2>&1 || true
		i=0
		while kill -0 "$NSPAWN" 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
		kill "$NSPAWN" 2>/dev/null || true
	fi
	for m in "$ROOT/proc" "$ROOT/dev/pts"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

DEB=${1:-}
if [ -z "$DEB" ]; then
	tools/build-deb.sh "$REPO/build/deb-out"
	DEB=$(ls "$REPO"/build/deb-out/mailkeep_*_amd64.deb | head -n 1)
fi
[ -f "$DEB" ] || fail "no package: $DEB"

if [ ! -x "$BASE/bin/sh" ]; then
	say "debootstrap bookworm into $BASE (once)"
	debootstrap --variant=minbase bookworm "$BASE.tmp" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
		fail "debootstrap (log: $WORK/debootstrap.log)"
	mv "$BASE.tmp" "$BASE"
fi
say "a copy of the clean system in $ROOT"
cp -a "$BASE" "$ROOT"
cp "$DEB" "$ROOT/root/"
mount --bind /proc "$ROOT/proc"
say "apt-get install systemd and $(basename "$DEB") (and what it depends on)"
chroot "$ROOT" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus python3 \
		/root/$(basename "$DEB")" >"$WORK/apt.log" 2>&1 || fail "apt-get install (log: $WORK/apt.log)"
umount "$ROOT/proc"
grep -q "Setting up mailkeep" "$WORK/apt.log" || fail "mailkeep was not set up"
echo "mailkeep-test" > "$ROOT/etc/hostname"

say "boot it: systemd-nspawn --boot"
systemd-nspawn -q -D "$ROOT" --boot --register=no --keep-unit --private-network \
	--bind=/dev/fuse -M mailkeep-test >"$LOG" 2>&1 &
NSPAWN=$!
LEADER=
i=0
while [ -z "$LEADER" ] && [ $i -lt 100 ]; do
	LEADER=$(cat "/proc/$NSPAWN/task/$NSPAWN/children" 2>/dev/null | awk '{print $1}')
	sleep 0.2
	i=$((i + 1))
done
[ -n "$LEADER" ] || fail "the container did not start"
in_ct() { nsenter -t "$LEADER" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
i=0
until in_ct systemctl is-system-running --wait >/dev/null 2>&1 || [ $i -ge 3 ]; do sleep 5; i=$((i + 1)); done
in_ct systemctl is-active --quiet mailkeep.service || fail "mailkeep.service is not active"
in_ct systemctl is-active --quiet mailkeep-mount.service || fail "mailkeep-mount.service is not active"
say "both units are active (Type=notify: READY=1 was sent)"

in_ct sh -c 'printf "s3cret-pw\n" | mailkeep user add bob --password-file -' >/dev/null || fail "user add"
in_ct python3 - <<'EOF' || fail "SMTP, IMAP, the mount or the metrics"
import imaplib, smtplib, ssl, time, urllib.request, os
with smtplib.SMTP("127.0.0.1", 25, timeout=10) as s:
    s.ehlo("client.example.net")
    assert s.has_extn("starttls")
    s.sendmail("someone@example.net", ["bob@localhost"], "Subject: through the package\r\n\r\nhello\r\n")
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for _ in range(50):
    with imaplib.IMAP4_SSL("127.0.0.1", 993, ssl_context=ctx) as im:
        im.login("bob", "s3cret-pw")
        im.select("INBOX", readonly=True)
        typ, data = im.search(None, "SUBJECT", '"through the package"')
        if data[0]:
            break
    time.sleep(0.1)
assert data[0], "the message is not in INBOX"
files = [f"/mail/bob/{d}/{n}" for d in ("new", "cur") for n in os.listdir(f"/mail/bob/{d}")]
assert any("through the package" in open(f).read() for f in files), files
text = urllib.request.urlopen("http://127.0.0.1:9154/metrics", timeout=10).read().decode()
assert 'mailkeep_deliveries_total{mailbox="inbox"} 1' in text, text
assert 'mailkeep_up{service="smtpin"} 1' in text
print("test-deb: SMTP on 25, IMAP on 993, the mount, the metrics: ok")
EOF
in_ct mailkeep status | sed -n '/^services:/,/^queues:/p' | sed 's/^/  /'

# reload: a change is taken, a broken file refused (ExecReload runs `mailkeep check` first)
in_ct sh -c 'echo "smtpd_banner = \$myhostname ESMTP reloaded-by-systemctl" >> /etc/mailkeep/mailkeep.conf'
in_ct systemctl reload mailkeep || fail "systemctl reload"
in_ct python3 -c '
import smtplib
s = smtplib.SMTP(timeout=10)
code, banner = s.connect("127.0.0.1", 25)
s.quit()
assert b"reloaded-by-systemctl" in banner, banner
' || fail "the reloaded banner"
in_ct sh -c 'echo "message_size_limit = lots" >> /etc/mailkeep/mailkeep.conf'
if in_ct systemctl reload mailkeep >/dev/null 2>&1; then fail "a broken configuration was reloaded"; fi
in_ct systemctl is-active --quiet mailkeep.service || fail "a refused reload stopped the service"
in_ct python3 -c '
import smtplib
s = smtplib.SMTP(timeout=10)
code, banner = s.connect("127.0.0.1", 25)
s.quit()
assert code == 220 and b"reloaded-by-systemctl" in banner, banner
' || fail "after a refused reload, the settings loaded before are not in use"
say "systemctl reload: a change taken, a broken file refused, the settings before it kept, the service still active"
in_ct sed -i '/message_size_limit = lots/d' /etc/mailkeep/mailkeep.conf

in_ct systemctl stop mailkeep.service || fail "systemctl stop"
in_ct systemctl is-active --quiet mailkeep-mount.service && fail "the mount's unit did not stop with mailkeep.service (PartOf)"
in_ct sh -c 'grep -q " /mail " /proc/self/mounts' && fail "/mail is still mounted after stop"
say "systemctl stop: both units stopped, /mail unmounted"
say "ok: $(basename "$DEB") installs, starts, serves, reloads and stops on Debian 12 under systemd"
