#!/bin/sh
# Installs what mailkeep needs, from Debian's packages only (and, for the
# report's browser test, playwright-core from npm into build/node). Safe to
# run again: when every package is there already it says so and runs no apt
# (and needs no sudo).
#
#   tools/install-deps.sh            build, test and benchmark (CI: .ci/run)
#   tools/install-deps.sh --build    only what building and running needs (tools/demo.sh)
#   tools/install-deps.sh --missing [--build]   print the packages missing; exit 1 if any
#   tools/install-deps.sh --wait-for-apt        only wait until no program holds apt's lock
#
# When another program (unattended-upgrades, a package manager window) holds
# apt's lock, it says which and waits for it (MAILKEEP_APT_WAIT seconds,
# default 600), instead of failing with apt's "Could not get lock".
set -eu
cd "$(dirname "$0")/.."

# build, and what the services need to run (fuse3: the mount; swaks: the
# demo's first message; openssl: the certificate's fingerprint)
BUILD="build-essential clang pkg-config liblmdb-dev lmdb-utils libfuse3-dev fuse3
  libevent-dev libssl-dev openssl libldap-dev libetpan-dev libcmocka-dev zlib1g-dev libcrypt-dev
  libzstd-dev libqrencode-dev swaks libunbound-dev libopendkim-dev libspf2-dev libopendmarc-dev
  publicsuffix"
# tests: real clients and peers (dovecot-dev, autoconf, automake, libtool: to build
# Dovecot's imaptest, see tests/integration/imapd/test_imaptest.py; zbar-tools,
# libplist-utils, pst-utils: mailkeep phone's QR code and profile, Outlook files; groff-base:
# the manuals render without warnings, tests/integration/store); packaging (debhelper,
# lintian, fakeroot, dpkg-dev: make deb, tools/build-deb.sh; systemd: systemd-analyze,
# -sysusers and -tmpfiles in tests/integration/ops/test_units.py); the report's browser
# test (chromium; npm, if there is none, for playwright-core: tests/integration/ops/test_report.py);
# sieve-connect and python3-sievelib: ManageSieve clients, dovecot-sieve: Pigeonhole's
# sieve-test as the reference the interpreter is compared with, and the peer of
# tests/bench/sieve; vim: a real editor on the mount's .sieve file; python3-dkim,
# python3-spf and dovecot-core: the DKIM and SPF checkers and Postfix's SASL in
# tests/integration/send
TEST="python3 python3-pytest postfix mblaze isync neomutt offlineimap3 notmuch attr rsync ripgrep
  slapd ldap-utils dnsmasq-base curl util-linux procps iproute2 tmux pflogsumm fail2ban
  dovecot-dev autoconf automake libtool zbar-tools libplist-utils pst-utils
  debhelper lintian fakeroot dpkg-dev systemd chromium libjs-chart.js groff-base
  sieve-connect python3-sievelib dovecot-sieve vim python3-dkim python3-spf dovecot-core"
# benchmarks: the peers
BENCH="dovecot-imapd dovecot-lmtpd bogofilter spamprobe valgrind hyperfine e2fsprogs"
# playwright-core drives Debian's chromium (no browser of its own is fetched);
# 1.61 is the last that runs on Debian 12's nodejs 18 (1.62 wants node 20)
PLAYWRIGHT_VERSION=1.61.1

APT_LOCKS=${MAILKEEP_APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}
APT_WAIT=${MAILKEEP_APT_WAIT:-600}

# The pid of a process holding one of apt's locks (fcntl locks, as apt and
# dpkg take them: /proc/locks names the holder by device and inode), or nothing.
apt_lock_holder() {
	for f in $APT_LOCKS; do
		[ -e "$f" ] || continue
		ino=$(stat -c %i "$f")
		awk -v ino="$ino" '$2 != "->" && $6 ~ (":" ino "$") { print $5; exit }' /proc/locks
	done | head -n 1
}

wait_for_apt() {
	waited=0
	while pid=$(apt_lock_holder) && [ -n "$pid" ]; do
		if [ "$waited" = 0 ]; then
			name=$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")
			echo "install-deps: apt is busy: pid $pid ($name) holds its lock; waiting for it to finish (up to ${APT_WAIT}s, Ctrl-C to stop)"
		fi
		if [ "$waited" -ge "$APT_WAIT" ]; then
			echo "install-deps: apt is still busy (pid $pid) after ${APT_WAIT}s: run this again when it has finished" >&2
			exit 1
		fi
		sleep 1
		waited=$((waited + 1))
	done
	[ "$waited" = 0 ] || echo "install-deps: apt is free again (waited ${waited}s)"
}

# The packages of the list that are not installed.
missing() {
	# shellcheck disable=SC2086
	have=$(dpkg-query -W -f '${Package} ${db:Status-Status}\n' $1 2>/dev/null | awk '$2 == "installed" { print $1 }')
	for p in $1; do
		echo "$have" | grep -qx "$p" || echo "$p"
	done
}

mode=all
only_missing=
for a in "$@"; do
	case "$a" in
	--build) mode=build ;;
	--missing) only_missing=1 ;;
	--wait-for-apt) wait_for_apt; exit 0 ;;
	*) echo "usage: tools/install-deps.sh [--build] [--missing] | --wait-for-apt" >&2; exit 2 ;;
	esac
done
if [ "$mode" = build ]; then
	WANT="$BUILD"
else
	WANT="$BUILD $TEST $BENCH"
fi
need=$(missing "$WANT" | tr '\n' ' ')
if [ -n "$only_missing" ]; then
	[ -z "$need" ] && exit 0
	echo "$need"
	exit 1
fi

node_deps() {
	# the report's browser test: playwright-core (no browser download: it drives
	# /usr/bin/chromium), in build/node, outside the source tree's files
	[ "$mode" = all ] || return 0
	grep -qs "\"version\": \"$PLAYWRIGHT_VERSION\"" build/node/node_modules/playwright-core/package.json && return 0
	# any npm will do (Debian's, or one that came with a newer nodejs)
	if ! command -v npm >/dev/null; then
		wait_for_apt
		sudo=
		[ "$(id -u)" = 0 ] || sudo=sudo
		$sudo apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout="$APT_WAIT" npm >/dev/null
	fi
	mkdir -p build/node
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund \
		--prefix build/node "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null
	echo "install-deps: playwright-core $PLAYWRIGHT_VERSION in build/node"
}

if [ -z "$need" ]; then
	echo "install-deps: every package is there; apt not needed"
	node_deps
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: installing (through sudo): $need"
	exec sudo MAILKEEP_APT_WAIT="$APT_WAIT" "$0" "$@"
fi
echo "install-deps: installing: $need"
export DEBIAN_FRONTEND=noninteractive
# Never let a package start its own daemon (postfix, dovecot, slapd) on this box.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
wait_for_apt
log=$(mktemp)
# shellcheck disable=SC2086
if ! { apt-get update -qq -o DPkg::Lock::Timeout="$APT_WAIT" &&
	apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout="$APT_WAIT" $need; } >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	echo "install-deps: apt failed (above: the end of its output)" >&2
	rm -f "$log"
	exit 1
fi
rm -f "$log"
node_deps
echo "install-deps: done"
