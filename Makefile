# jada-agent: see README.md.  `make run` runs the daemon locally, `make check` runs every test.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
UNITDIR   ?= $(PREFIX)/lib/systemd/system
CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANDIR    ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR   ?=

CC        ?= cc
BUILD     ?= build
CFLAGS    ?= -O2 -g
PKGS      := libcurl jansson libsystemd sqlite3 openssl libzstd libmicrohttpd libpq

# Evaluated lazily so that `make check` can install the -dev packages first.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))

WARNINGS  := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
             -Wno-unused-parameter -Wno-missing-field-initializers -Werror
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -DJADA_VERSION='"$(VERSION)"' $(WARNINGS) \
             -Iinclude $(PKG_CFLAGS) $(CFLAGS) -MMD -MP

SRCS      := $(wildcard src/*.c)
LIB_OBJS  := $(patsubst src/%.c,$(BUILD)/%.o,$(filter-out src/main.c,$(SRCS)))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))

SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

.PHONY: all run deps-run deb deps-deb bench fuzz valgrind check-valgrind deps-valgrind test check lint check-system check-build \
	check-run check-postgresql check-asan check-unit-tests install uninstall clean deps-build deps-check

all: jada-agent

# Through a rename: a running ./jada-agent ("text file busy") must not stop a build.
jada-agent: $(BUILD)/jada-agent
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/jada-agent: $(BUILD)/main.o $(BUILD)/libjada.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/libjada.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libjada.a | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libjada.a $(PKG_LIBS) -lcmocka $(LDFLAGS)

# Tools the black-box tests drive (not tests themselves).
$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libjada.a | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libjada.a $(PKG_LIBS) $(LDFLAGS)

# The tests' settable wall clock (LD_PRELOAD); no sanitizers in a preloaded shim.
$(BUILD)/tests/libfakeclock.so: tests/lib/fakeclock.c | $(BUILD)/tests
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

$(BUILD) $(BUILD)/tests:
	mkdir -p $@

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)

deps-build:
	@tools/install-deps build

deps-run:
	@tools/install-deps run

deps-check:
	@tools/install-deps check

# The daemon in the foreground, state under ./var, no setup; the pinned
# Claude Code CLI when none is on PATH (tools/run-dev).
run: deps-run
	$(MAKE) jada-agent
	mkdir -p var
	tools/run-dev

# The layers (tests/README.md says what each proves and needs):
#   make test    unit tests and the black-box tests that need no root; a
#                minute or two, for everyday work
#   make lint    cppcheck, the unit's hardening gate, the man pages
#   make check   everything, as CI runs it: lint, every test with gcc, the
#                system tests under systemd, every test again with clang
#                under ASan+UBSan, the fuzz regressions
test: deps-check
	$(MAKE) check-build
	$(MAKE) check-unit-tests
	python3 tests/run.py --no-root --bin $(BUILD)/jada-agent --build $(BUILD)

check: deps-check
	$(MAKE) lint
	$(MAKE) check-run
	$(MAKE) check-postgresql
	$(MAKE) check-system
	$(MAKE) check-asan
	tools/fuzz --replay
	@echo "make check: all tests passed"

check-asan:
	$(MAKE) check-run BUILD=build/asan CC=clang CFLAGS="$(SAN_FLAGS)"

# cppcheck reads the code without the system headers; tools/cppcheck.h
# names the library macros it would otherwise not know. The hardening gate
# is systemd-analyze's exposure score, 10x: 25 is 2.5.
lint: deps-check
	cppcheck --enable=warning,performance,portability --error-exitcode=1 --inline-suppr -q \
		-Iinclude -D_GNU_SOURCE --std=c11 --include=tools/cppcheck.h src
	systemd-analyze security --offline=true --threshold=25 systemd/jada-agent.service
	@for m in man/*.[0-9]; do \
		w=$$(MANWIDTH=80 man --warnings -l $$m 2>&1 >/dev/null); \
		if [ -n "$$w" ]; then echo "$$m: $$w"; exit 1; fi; \
	done

# System tests under a real systemd: an nspawn boot of a cached Debian 12
# tree (root only; the tree is built once with network, the tests need
# none). The gcc build: the tree has no libasan. Then the same container
# again with the Debian package (make deb) installed by apt instead.
check-system: $(BUILD)/jada-agent
	tools/install-claude-cli build/claude-cli >/dev/null && \
	tree=$$(tools/system-tree | tail -n1) && \
		timeout 900 python3 tests/system/test_system.py --bin $(BUILD)/jada-agent --tree "$$tree" \
			--claude-cli build/claude-cli
	$(MAKE) deb
	tree=$$(tools/system-tree | tail -n1) && \
		timeout 600 python3 tests/system/test_system.py --bin $(BUILD)/jada-agent --tree "$$tree" \
			--deb build/deb/jada-agent_$(VERSION)_$$(dpkg --print-architecture).deb

check-build: $(BUILD)/jada-agent $(UNIT_BINS) $(TOOL_BINS) $(BUILD)/tests/libfakeclock.so

check-unit-tests: check-build
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

check-run: check-unit-tests
	@# The real Claude Code CLI (npm, pinned) for the end-to-end test; kept
	@# in build/claude-cli so the sanitizer pass reuses it.
	cli=$$(tools/install-claude-cli build/claude-cli) && \
		JADA_CLAUDE_CLI=$$cli python3 tests/run.py --bin $(BUILD)/jada-agent --build $(BUILD)

# The black-box tests that apply to a fleet (tests/postgresql.list) once
# more, each test's daemon and commands on a PostgreSQL database of their
# own (a server of tests/lib/pg.py for the run): one code path, two backends.
check-postgresql: check-build
	cli=$$(tools/install-claude-cli build/claude-cli) && \
		JADA_CLAUDE_CLI=$$cli python3 tests/run.py --bin $(BUILD)/jada-agent --build $(BUILD) \
			--postgresql tests/postgresql.list

install: jada-agent
	install -D -m 0755 jada-agent $(DESTDIR)$(BINDIR)/jada-agent
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/jada-agent|$(BINDIR)/jada-agent|' systemd/jada-agent.service \
		> $(DESTDIR)$(UNITDIR)/jada-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/jada-agent.service
	install -D -m 0644 systemd/jada-agent.catalog $(DESTDIR)$(CATALOGDIR)/jada-agent.catalog
	install -D -m 0644 systemd/jada-agent.sysusers $(DESTDIR)$(SYSUSERSDIR)/jada-agent.conf
	install -D -m 0644 man/jada-agent.8 $(DESTDIR)$(MANDIR)/man8/jada-agent.8
	install -D -m 0644 man/jada-agent.conf.5 $(DESTDIR)$(MANDIR)/man5/jada-agent.conf.5
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/jada-agent.conf ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/jada-agent.conf"; \
	else \
		install -D -m 0644 config/jada-agent.conf $(DESTDIR)$(SYSCONFDIR)/jada-agent.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/jada-agent $(DESTDIR)$(UNITDIR)/jada-agent.service \
		$(DESTDIR)$(CATALOGDIR)/jada-agent.catalog $(DESTDIR)$(SYSUSERSDIR)/jada-agent.conf \
		$(DESTDIR)$(MANDIR)/man8/jada-agent.8 $(DESTDIR)$(MANDIR)/man5/jada-agent.conf.5
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/jada-agent.conf (your configuration)"

# Once in a while, not in `make check` (it takes about 13 minutes): the unit
# tests, then the black-box suite and the crash torture (fewer kills) with the
# daemon and every command-line run under valgrind memcheck. Any error, or a
# leak that is definitely lost, fails the test that caused it.
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --child-silent-after-fork=yes
valgrind: deps-valgrind
	$(MAKE) check-valgrind BUILD=build/valgrind CFLAGS="-O1 -g"

check-valgrind: check-build
	@set -e; for t in $(UNIT_BINS); do echo "== valgrind $$t"; $(VALGRIND) $$t; done
	cli=$$(tools/install-claude-cli build/claude-cli) && \
		JADA_CLAUDE_CLI=$$cli JADA_TEST_TIMEOUT=120 JADA_TORTURE_KILLS=20 JADA_FAULT_ROWS_AT_ONCE=4 \
		JADA_TEST_WRAPPER="$(VALGRIND)" \
		python3 tests/run.py --bin $(BUILD)/jada-agent --build $(BUILD)

deps-valgrind:
	@tools/install-deps valgrind

# libFuzzer targets (tests/fuzz/), FUZZ_SECONDS each, one after another.
FUZZ_SECONDS ?= 600
fuzz: deps-check
	tools/fuzz $(FUZZ_SECONDS)

# A Debian package (debhelper, compat 13): build/deb/jada-agent_VERSION_ARCH.deb,
# built from a copy of the tree (tracked and untracked, not ignored files) so
# that the tree stays clean, then checked with lintian: no error may stay.
deb: deps-deb
	rm -rf build/deb && mkdir -p build/deb/src
	git ls-files -z --cached --others --exclude-standard | \
		tar --null -T - --ignore-failed-read -cf - | tar -xf - -C build/deb/src
	cd build/deb/src && dpkg-buildpackage -us -uc -b
	lintian --fail-on error --info build/deb/jada-agent_$(VERSION)_*.changes
	@ls build/deb/jada-agent_$(VERSION)_*.deb

deps-deb:
	@tools/install-deps deb

# Measurements, not tests: prints figures, asserts nothing.
bench: deps-check
	$(MAKE) jada-agent $(BUILD)/bench/stream $(BUILD)/bench/claims
	$(BUILD)/bench/stream
	python3 bench/core.py --bin ./jada-agent
	python3 bench/project.py --bin ./jada-agent
	python3 bench/web.py --bin ./jada-agent
	python3 bench/fleet.py --bin ./jada-agent --claims $(BUILD)/bench/claims
	@if [ "$$(id -u)" -eq 0 ]; then \
		python3 bench/subtasks.py --bin ./jada-agent --cli $$(tools/install-claude-cli build/claude-cli); \
	else echo "bench/subtasks.py: needs root (a private network namespace); not run"; fi

$(BUILD)/bench/%: bench/%.c $(BUILD)/libjada.a
	mkdir -p $(BUILD)/bench
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libjada.a $(PKG_LIBS) $(LDFLAGS)

clean:
	rm -rf build jada-agent
