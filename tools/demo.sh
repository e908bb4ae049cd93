#!/bin/sh
# The README's first command: on a fresh Debian machine, install what mailkeep
# needs to build and run (tools/install-deps.sh --build: no apt at all when
# every package is there), build the programs (not the tests), make an
# instance on embedded defaults (a store, a user with a password, a
# self-signed certificate, a welcome message in the user's INBOX) and run it:
# `mailkeep run` starts every service that is built (SMTP/LMTP, IMAP, the
# mount) and supervises them until Ctrl-C. Run again, it reuses the instance
# (the same password, no second welcome message).
#
#   MAILKEEP_DEMO=DIR          where the instance goes (default: ./demo)
#   MAILKEEP_DEMO_USER=NAME    the user (default: demo)
#   MAILKEEP_DEMO_SKIP_DEPS=1  do not look at the packages at all
#   MAILKEEP_DEMO_NO_RUN=1     stop after making the instance
#   MAILKEEP_BUILD=DIR         where to build (default: ./build)
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
DIR=${MAILKEEP_DEMO:-$REPO/demo}
USER_NAME=${MAILKEEP_DEMO_USER:-demo}
BUILD=${MAILKEEP_BUILD:-$REPO/build}

# 1. packages: only when one is missing (and then through sudo, waiting for
# apt's lock if another program holds it)
if [ -z "${MAILKEEP_DEMO_SKIP_DEPS:-}" ]; then
	tools/install-deps.sh --build
fi

# 2. the programs, quietly (the compiler's lines go to a log)
mkdir -p "$BUILD"
LOG="$BUILD/demo-build.log"
printf 'building: '
start=$(date +%s)
if ! make -j"$(nproc 2>/dev/null || echo 2)" BUILD="$BUILD" programs >"$LOG" 2>&1; then
	echo "failed; the end of $LOG:"
	tail -n 25 "$LOG"
	exit 1
fi
echo "done in $(($(date +%s) - start)) s ($BUILD/bin; the compiler's lines in $LOG)"
MK="$BUILD/bin/mailkeep"

# 3. the instance, once
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CONF="$DIR/mailkeep.conf"
if [ ! -f "$CONF" ]; then
	umask 077
	if [ ! -f "$DIR/password" ]; then
		# a fresh random password, kept next to the instance for the demo
		head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$DIR/password"
	fi
	umask 022
	# init --local picks free ports and says which it moved
	"$MK" init --local --user "$USER_NAME" --password-file "$DIR/password" \
		--hostname localhost "$DIR" | grep '^init: port' || true
	echo "instance:  made in $DIR"
else
	echo "instance:  $DIR (made before; kept as it is)"
fi
export MAILKEEP_CONF="$CONF"
if ! "$MK" check >/dev/null; then
	echo "the configuration $CONF has a problem (above); fix it, or remove $DIR to start afresh" >&2
	exit 1
fi
get() { "$MK" check --get "$1"; }
SMTP=$(get smtpd_listen | sed 's/[ ,].*//')
IMAPS=$(get imapd_tls_listen | sed 's/[ ,].*//')
IMAP=$(get imapd_listen | sed 's/[ ,].*//')
MOUNT=$(get mount_point)
DATA=$(get data_directory)
RUNLOG="$DIR/mailkeep.log"
if [ -n "${MAILKEEP_DEMO_NO_RUN:-}" ]; then
	echo "instance ready: export MAILKEEP_CONF=$CONF; mailkeep run"
	exit 0
fi

# 4. run it; its log goes to a file, the terminal gets one line per service
"$MK" run >"$RUNLOG" 2>&1 &
RUN=$!
stop() {
	trap - INT TERM
	echo
	echo "stopping (mailkeep run, pid $RUN) ..."
	kill -TERM "$RUN" 2>/dev/null || true
	wait "$RUN" || true
	echo "stopped; run tools/demo.sh again to start it again (same instance, same password)"
	exit 0
}
trap stop INT TERM
waited=0
until "$MK" status --wait 1 >/dev/null 2>&1; do
	if ! kill -0 "$RUN" 2>/dev/null; then
		echo "mailkeep run stopped at once; the end of its log ($RUNLOG):" >&2
		tail -n 15 "$RUNLOG" >&2
		echo "(a port in use: mailkeep run names the program holding it; change that setting in $CONF)" >&2
		wait "$RUN" || true
		exit 1
	fi
	waited=$((waited + 1))
	if [ "$waited" -ge 30 ]; then
		echo "not every service answers after 30 s (the log: $RUNLOG):" >&2
		"$MK" status 2>&1 | sed -n '/^services:/,/^queues:/p' >&2
		break
	fi
done

# 5. the first message through SMTP, as all mail will come: once per instance
MARK="$DATA/demo-greeted"
if [ ! -f "$MARK" ] && [ -n "$SMTP" ] && command -v swaks >/dev/null; then
	if swaks -s "$SMTP" --to "$USER_NAME@localhost" --from "postmaster@localhost" \
		--header "Subject: mailkeep is running" \
		--body "mailkeep received this through SMTP on $SMTP; IMAP serves it on $IMAPS (TLS)." \
		>/dev/null 2>&1; then
		touch "$MARK"
		echo "sent:      'mailkeep is running' to $USER_NAME through SMTP ($SMTP)"
	fi
fi

# 6. what a person needs to use it
FPR=$(openssl x509 -in "$(get tls_cert_file)" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')
PW=$(cat "$DIR/password")
echo
echo "mailkeep is running (Ctrl-C stops it; its log: $RUNLOG)"
"$MK" status 2>/dev/null | sed -n '/^services:/,/^queues:/p' | sed '$d' | sed 's/^  /  /'
echo
echo "  instance   $DIR      (export MAILKEEP_CONF=$CONF)"
echo "  user       $USER_NAME, password $PW   (kept in $DIR/password)"
echo "  your mail  $MOUNT/$USER_NAME: new mail in new/, read mail in cur/ (ls, grep -r, cat)"
echo
echo "A mail program (Thunderbird, K-9, a phone's Mail) on this machine:"
echo "  incoming   IMAP, server ${IMAPS%:*}, port ${IMAPS##*:}, security SSL/TLS, user $USER_NAME, the password above"
echo "             (or port ${IMAP##*:} with STARTTLS)"
echo "  outgoing   SMTP, server ${SMTP%:*}, port ${SMTP##*:}, STARTTLS, user $USER_NAME, the same password"
echo "             (for mail to the users of this instance)"
echo "  the certificate is self-signed: accept it once its SHA-256 fingerprint reads"
echo "             $FPR"
echo "  a phone on your network: in $CONF set imapd_tls_listen = 0.0.0.0:${IMAPS##*:}"
echo "             and smtpd_listen = 0.0.0.0:${SMTP##*:}, then Ctrl-C and tools/demo.sh again"
echo
echo "Read it now:   ls $MOUNT/$USER_NAME/new/   or   grep -r Subject: $MOUNT/$USER_NAME"
if command -v neomutt >/dev/null; then
	echo "               neomutt -f $MOUNT/$USER_NAME"
fi
wait "$RUN" || true
