# mailkeep — top-level build.
#
#   make                 build everything into build/
#   make asan            the same under ASan+UBSan into build/asan/ (used by the unit tests)
#   make test            unit tests (cmocka, ASan+UBSan), integration tests (pytest), short fuzz runs
#   make unit | integration | fuzz-smoke   one part of the above
#   make bench           benchmarks against the peers named in the issues
#   make install PREFIX=/usr/local
#
# Layout: lib/ -> build/lib/libmk.a, index/ -> build/index/libindex.a, each program
# folder links one binary: tools/ -> mailkeep, smtpin/ -> mailkeep-smtpin,
# imapd/ -> mailkeep-imapd, fs/ -> mailkeep-fs. A program folder without a main
# yet is skipped. New .c files are picked up by wildcard.

BUILD    ?= build
.DEFAULT_GOAL := all
# Quiet by default; `make V=1` shows every command.
Q        := $(if $(V),,@)
PREFIX   ?= /usr/local
CC       ?= cc
SANITIZE ?=
PYTEST   ?= /usr/bin/python3 -m pytest

PKGS     := lmdb libcrypto libssl libevent libevent_openssl libevent_pthreads fuse3 ldap lber libetpan zlib libcrypt
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(filter-out -specs=%,$(shell pkg-config --libs $(PKGS) 2>/dev/null))

WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Werror
ifeq ($(SANITIZE),)
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT      := -O2
else
SAN      := -fsanitize=address,undefined
HARDEN   := -fstack-protector-strong -fPIE $(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1
endif
CFLAGS   ?=
CFLAGS_ALL := -std=gnu11 $(OPT) -g $(WARN) $(HARDEN) -I. -pthread $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := -pie -Wl,-z,relro,-z,now -pthread $(SAN) -Wl,--as-needed
LIBS_ALL := $(PKG_LIBS) -lm

LIB_SRC   := $(wildcard lib/*.c)
INDEX_SRC := $(wildcard index/*.c)
LIB_A     := $(BUILD)/lib/libmk.a
INDEX_A   := $(BUILD)/index/libindex.a

# program folder -> binary name
PROGRAMS := tools:mailkeep smtpin:mailkeep-smtpin imapd:mailkeep-imapd fs:mailkeep-fs
prog_dir  = $(word 1,$(subst :, ,$(1)))
prog_name = $(word 2,$(subst :, ,$(1)))
BINS :=
define PROGRAM_RULES
$(call prog_dir,$(1))_SRC := $$(wildcard $(call prog_dir,$(1))/*.c)
ifneq ($$($(call prog_dir,$(1))_SRC),)
BINS += $(BUILD)/bin/$(call prog_name,$(1))
$(BUILD)/bin/$(call prog_name,$(1)): $$(patsubst %.c,$(BUILD)/%.o,$$($(call prog_dir,$(1))_SRC)) $(INDEX_A) $(LIB_A)
	@mkdir -p $$(@D)
	@$(if $(V),:,echo "  LD      $$@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $$@ $$^ $(LIBS_ALL)
endif
endef
$(foreach p,$(PROGRAMS),$(eval $(call PROGRAM_RULES,$(p))))

UNIT_SRC  := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.DELETE_ON_ERROR:
.PHONY: all asan test unit integration fuzz fuzz-smoke bench install clean format deps demo man
all: $(BINS) $(UNIT_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(V),:,echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(LIB_A): $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

$(INDEX_A): $(patsubst %.c,$(BUILD)/%.o,$(INDEX_SRC))
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/test-%: $(BUILD)/tests/unit/test-%.o $(INDEX_A) $(LIB_A)
	@mkdir -p $(@D)
	@$(if $(V),:,echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL) -lcmocka

asan:
	$(MAKE) BUILD=build/asan SANITIZE=1 all

unit: asan
	tests/run-unit.sh build/asan/tests

# One pytest run per area: every area has a conftest.py of its own, and test
# modules that `from conftest import ...` must meet theirs (pytest gives the
# name "conftest" to whichever was loaded last when areas are collected together).
integration: all
	@rc=0; for d in tests/integration/*/; do \
		echo "=== integration: $$d"; \
		MAILKEEP_BUILD=$(abspath $(BUILD)) $(PYTEST) -q -ra $$d; r=$$?; \
		if [ $$r -ne 0 ] && [ $$r -ne 5 ]; then rc=1; echo "=== integration: $$d FAILED"; fi; \
	done; exit $$rc

fuzz:
	$(MAKE) -f tests/fuzz/Makefile

fuzz-smoke: fuzz
	tests/fuzz/run.sh 20

test: unit integration fuzz-smoke

bench: all
	tests/bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/mailkeep $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(BUILD)/bin/mailkeep $(DESTDIR)$(PREFIX)/bin/mailkeep
	for b in $(filter-out $(BUILD)/bin/mailkeep,$(BINS)); do install -m 755 $$b $(DESTDIR)$(PREFIX)/lib/mailkeep/; done
	for m in doc/man/*.[158]; do [ -f "$$m" ] || continue; s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

deps:
	tools/install-deps.sh

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# The README's first command: deps, build, an instance in ./demo, and `mailkeep run`.
demo:
	tools/demo.sh

# mailkeep.conf(5) is generated from the settings tables (index/params_*.c).
man: $(BUILD)/bin/mailkeep
	$(BUILD)/bin/mailkeep check --man > doc/man/mailkeep.conf.5
