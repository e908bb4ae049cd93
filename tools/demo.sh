#!/bin/sh
# The README's first command: on a fresh Debian machine, install what mailkeep
# needs, build it, make an instance on embedded defaults (a store, a user with
# a password, a self-signed certificate, a welcome message in the user's INBOX)
# and run it: `mailkeep run` starts every service that is built (SMTP/LMTP,
# IMAP, the mount) and supervises them until Ctrl-C.
#
#   MAILKEEP_DEMO=DIR     where the instance goes (default: ./demo)
#   MAILKEEP_DEMO_USER    the user (default: demo)
#   MAILKEEP_DEMO_NO_RUN=1   stop after making the instance (for tests)
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
DIR=${MAILKEEP_DEMO:-$REPO/demo}
USER_NAME=${MAILKEEP_DEMO_USER:-demo}

if [ -z "${MAILKEEP_DEMO_SKIP_DEPS:-}" ]; then
	tools/install-deps.sh
fi
make -j"$(nproc 2>/dev/null || echo 2)"
MK="$REPO/build/bin/mailkeep"

if [ ! -f "$DIR/mailkeep.conf" ]; then
	mkdir -p "$DIR"
	umask 077
	if [ ! -f "$DIR/password" ]; then
		# a fresh random password, kept next to the instance for the demo
		head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$DIR/password"
	fi
	"$MK" init --local --user "$USER_NAME" --password-file "$DIR/password" --hostname localhost "$DIR"
fi
MAILKEEP_CONF="$DIR/mailkeep.conf"
export MAILKEEP_CONF
"$MK" check
"$MK" user show "$USER_NAME"
echo
echo "instance:  $DIR   (export MAILKEEP_CONF=$MAILKEEP_CONF)"
echo "user:      $USER_NAME, password in $DIR/password"
grep -E '^(smtpd_listen|imapd_listen|imapd_tls_listen|lmtp_listen|mount_point) ' "$MAILKEEP_CONF" | sed 's/^/service:   /' || true
echo "read it:   $MK export $USER_NAME /tmp/$USER_NAME-maildir && mutt -f /tmp/$USER_NAME-maildir"
if [ -n "${MAILKEEP_DEMO_NO_RUN:-}" ]; then
	exit 0
fi
have=
for s in mailkeep-smtpin mailkeep-imapd mailkeep-fs; do
	[ -x "$REPO/build/bin/$s" ] && have="$have $s"
done
if [ -z "$have" ]; then
	echo "no service is built yet: the store is ready; nothing to run"
	exit 0
fi
echo "running:  $have   (mailkeep run; Ctrl-C stops)"
"$MK" run &
RUN=$!
trap 'kill -TERM $RUN 2>/dev/null; wait $RUN; exit 0' INT TERM
SMTP=$(sed -n 's/^smtpd_listen = \([^ ,]*\).*/\1/p' "$MAILKEEP_CONF")
if [ -n "$SMTP" ] && command -v swaks >/dev/null; then
	# the services are up: say so with a message through SMTP, as all mail will come
	i=0
	while [ $i -lt 50 ]; do
		if swaks -s "$SMTP" --to "$USER_NAME@localhost" --from "postmaster@localhost" \
			--header "Subject: mailkeep is running" \
			--body "SMTP: $SMTP. $(grep -E '^imapd_listen' "$MAILKEEP_CONF" | sed 's/ = /: /')" >/dev/null 2>&1; then
			echo "sent:      'mailkeep is running' to $USER_NAME through SMTP ($SMTP)"
			break
		fi
		i=$((i + 1))
		sleep 0.2
	done
fi
wait $RUN
