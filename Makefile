# cachetoryd — build, run, test, install.
#   make                      build build/cachetoryd
#   make run                  install missing packages, build, serve on 127.0.0.1:6380
#   make test                 unit + integration tests, ends with "N passed, M failed"
#   make SANITIZER=address    (or undefined) instrumented build in build/
#   make install PREFIX=/usr/local [SYSCONFDIR=/etc] DESTDIR=
#   make V=1                  show the commands

PREFIX    ?= /usr/local
SYSCONFDIR ?= $(PREFIX)/etc
DESTDIR   ?=
BUILD     ?= build
CC        ?= cc
PKG_CONFIG ?= pkg-config

LIBS_PC   := libuv hiredis zlib libzstd msgpack inih
PC_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LIBS_PC) 2>/dev/null)
PC_LIBS   := $(shell $(PKG_CONFIG) --libs $(LIBS_PC) 2>/dev/null)

OPT       ?= -O2 -g
WARN      := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter -Wno-missing-field-initializers
PROJ_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -MMD -MP -Isrc $(PC_CFLAGS)
PROJ_LDLIBS := $(PC_LIBS) -lm

ifeq ($(SANITIZER),address)
  PROJ_CFLAGS += -fsanitize=address -fno-omit-frame-pointer
  PROJ_LDFLAGS += -fsanitize=address
else ifeq ($(SANITIZER),undefined)
  PROJ_CFLAGS += -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  PROJ_LDFLAGS += -fsanitize=undefined
endif

ifeq ($(V),1)
  Q :=
else
  Q := @
endif

SRC      := $(shell find src -name '*.c' | sort)
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
LIB_OBJ  := $(filter-out $(BUILD)/src/main.o,$(OBJ))

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test unit integration deps clean install
all: $(BUILD)/cachetoryd

$(BUILD)/cachetoryd: $(OBJ)
	@echo "  LINK  $@"
	$(Q)$(CC) $(PROJ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PROJ_LDLIBS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(PROJ_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LINK  $@"
	$(Q)$(CC) $(PROJ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PROJ_LDLIBS) -lcmocka $(LDLIBS)

# Install the Debian packages only when something is missing.
deps:
	$(Q)scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

run: deps
	$(Q)$(MAKE) --no-print-directory all
	./$(BUILD)/cachetoryd conf/cachetoryd.conf

unit: $(UNIT_BIN)

test: deps
	$(Q)$(MAKE) --no-print-directory all unit
	$(Q)BUILD=$(BUILD) tests/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/cachetoryd
	install -m 0755 $(BUILD)/cachetoryd $(DESTDIR)$(PREFIX)/bin/cachetoryd
	install -m 0644 conf/cachetoryd.conf $(DESTDIR)$(SYSCONFDIR)/cachetoryd/cachetoryd.conf

clean:
	rm -rf $(BUILD)

-include $(OBJ:.o=.d) $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d)
