#!/bin/sh
# Compile-fail tests of the typed settings, and two static checks: no code
# looks a setting up by a literal name, and every include keeps the arrows.
# Run from the top of the tree by `make test` (make compile-tests). CC and
# CFLAGS as the build's.
set -u
CC=${CC:-cc}
CFLAGS=${CFLAGS:--std=gnu11 -Wall -Wextra -Werror -I.}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0 n=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; }

# the correct bindings compile, so a failure below is the name's or the type's
if $CC $CFLAGS -c -o "$out/ok.o" tests/compile/settings.c 2>"$out/ok.err"; then
	ok "correct bindings compile"
else
	cat "$out/ok.err"
	not_ok "correct bindings compile"
fi
for variant in MISSPELT:smtpd_banerr MISSPELT_USE:smtpd_recipient_limt WRONG_TYPE:smtpd_banner; do
	def=${variant%%:*} name=${variant#*:}
	if $CC $CFLAGS -D"$def" -c -o "$out/$def.o" tests/compile/settings.c 2>"$out/$def.err"; then
		not_ok "$def: compiled, but must not"
	elif grep -q "$name" "$out/$def.err"; then
		ok "$def: the build fails, naming $name"
	else
		cat "$out/$def.err"
		not_ok "$def: the build fails, but not because of $name"
	fi
done

# No setting is looked up by a literal name outside the binding tables
# (lib/config.c is the lookup itself; tests may read any name).
hits=$(grep -rnE 'config_get(_[a-z]+)?\([^,]+, *"' --include='*.c' --include='*.h' \
	lib index smtpin imapd fs tools | grep -v '^lib/config\.c:')
if [ -z "$hits" ]; then
	ok "no config_get*(cfg, \"literal\") outside lib/config.c"
else
	echo "$hits"
	not_ok "config_get*(cfg, \"literal\") outside lib/config.c"
fi
# The one-way arrows (doc/architecture.md): lib/ includes only lib/, index/
# only index/ and lib/, a program only itself, index/ and lib/.
arrows_ok=1
for dir in lib index smtpin imapd fs tools; do
	case $dir in
	lib) allowed="lib" ;;
	index) allowed="index|lib" ;;
	*) allowed="$dir|index|lib" ;;
	esac
	bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include "[a-z]+/' --include='*.c' --include='*.h' \
		--include='*.def' "$dir" | grep -vE "#[[:space:]]*include \"($allowed)/")
	if [ -n "$bad" ]; then
		echo "$bad"
		arrows_ok=0
	fi
done
if [ $arrows_ok = 1 ]; then
	ok "the includes keep the one-way arrows (lib <- index <- programs)"
else
	not_ok "an include goes against the arrows"
fi
echo "compile tests: $n run, $([ $fail = 0 ] && echo 'all passed' || echo FAILED)"
exit $fail
