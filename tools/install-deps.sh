#!/bin/sh
# Installs everything mailkeep needs to build, test and benchmark, from Debian's
# packages only. Run as root (or through sudo). Safe to run again.
set -eu
if [ "$(id -u)" != 0 ]; then exec sudo "$0" "$@"; fi
export DEBIAN_FRONTEND=noninteractive
# Never let a package start its own daemon (postfix, dovecot, slapd) on this box.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
apt-get update -qq
# build
BUILD="build-essential clang pkg-config liblmdb-dev lmdb-utils libfuse3-dev fuse3
  libevent-dev libssl-dev openssl libldap-dev libetpan-dev libcmocka-dev zlib1g-dev libcrypt-dev
  libqrencode-dev libunbound-dev libopendkim-dev libspf2-dev libopendmarc-dev publicsuffix"
# tests: real clients and peers (dovecot-dev, autoconf, automake, libtool: to build
# Dovecot's imaptest, see tests/integration/imapd/test_imaptest.py; zbar-tools,
# libplist-utils, pst-utils: mailkeep phone's QR code and profile, Outlook files;
# python3-dkim, python3-spf and dovecot-core: the DKIM and SPF checkers and
# Postfix's SASL in tests/integration/send; sieve-connect and python3-sievelib:
# ManageSieve clients, dovecot-sieve: Pigeonhole's sieve-test as the reference
# the interpreter is compared with, and the peer of tests/bench/sieve)
TEST="python3 python3-pytest swaks postfix mblaze isync neomutt offlineimap3 notmuch attr rsync ripgrep
  slapd ldap-utils dnsmasq-base curl util-linux procps iproute2 tmux pflogsumm fail2ban
  dovecot-dev autoconf automake libtool zbar-tools libplist-utils pst-utils python3-dkim python3-spf
  dovecot-core sieve-connect python3-sievelib dovecot-sieve vim"
# benchmarks: the peers
BENCH="dovecot-imapd dovecot-lmtpd bogofilter spamprobe valgrind hyperfine e2fsprogs"
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $BUILD $TEST ${MAILKEEP_NO_BENCH:+} $BENCH >/dev/null
echo "install-deps: done"
