# The libFuzzer targets and a copy of the library built for them (clang,
# coverage + ASan + UBSan). Driven by tools/fuzz; usable alone:
#   make -f tests/fuzz/build.mk -j2
# libFuzzer brings its own main(), so src/main.c stays out.

VERSION   := 0.1.0
FUZZ_BUILD ?= build/fuzz
FUZZ_CC   ?= clang
PKGS      := libcurl jansson libsystemd sqlite3 openssl libzstd libmicrohttpd libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

WARNINGS  := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
             -Wno-unused-parameter -Wno-missing-field-initializers -Werror
SAN       := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -DJADA_VERSION='"$(VERSION)"' $(WARNINGS) -Iinclude $(PKG_CFLAGS) \
               -O1 -g -fno-omit-frame-pointer $(SAN) -MMD -MP

LIB_SRCS  := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS  := $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRCS))
TARGETS   := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all
all: $(TARGETS)

$(FUZZ_BUILD)/libjada-fuzz.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

# The library gets coverage instrumentation but no second main().
$(FUZZ_BUILD)/obj/%.o: src/%.c | $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libjada-fuzz.a | $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libjada-fuzz.a $(PKG_LIBS)

$(FUZZ_BUILD)/obj:
	mkdir -p $@

-include $(wildcard $(FUZZ_BUILD)/obj/*.d $(FUZZ_BUILD)/*.d)
