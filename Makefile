# cachetoryd — build, run, test, install.
#   make                      build build/cachetoryd
#   make run                  install missing packages, build, serve on 127.0.0.1:6380
#   make test                 unit + integration tests, ends with "N passed, M failed"
#   make test VALGRIND=1      the same with every test daemon and unit test binary under valgrind
#                             (memory errors and definite leaks fail the test; tests/run.sh)
#   make SANITIZER=address    (or undefined) instrumented build in build/
#   make install PREFIX=/usr/local [SYSCONFDIR=/etc] DESTDIR=
#   make V=1                  show the commands
#   make static               build-static/cachetoryd, one static stripped binary; make image: the container
#                             image localhost/cachetoryd from it (Containerfile, FROM scratch)
#   make check                the source layout: modules include only lower layers, no file over 900
#                             lines without a reason (scripts/check-layout; make test runs it too)

PREFIX    ?= /usr/local
SYSCONFDIR ?= $(PREFIX)/etc
DESTDIR   ?=
# an instrumented build lives apart, so that switching never mixes objects
comma := ,
ifdef SANITIZER
BUILD     ?= build-$(subst $(comma),-,$(SANITIZER))
else
BUILD     ?= build
endif
CC        ?= cc
PKG_CONFIG ?= pkg-config
# 1: make test runs the daemons and the unit tests under valgrind (the plain build: not with SANITIZER)
VALGRIND  ?=
ifneq ($(filter-out 0 no,$(VALGRIND)),)
ifneq ($(SANITIZER),)
$(error VALGRIND=1 runs the plain build under valgrind, which cannot run a SANITIZER=$(SANITIZER) binary)
endif
endif

LIBS_PC   := libuv hiredis zlib libzstd msgpack inih libssl libcrypto
# Quiet here: `make deps` (and run, test) parse this before installing what is missing. A missing
# library is named by pc-check below, which every compilation waits for.
PC_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LIBS_PC) 2>/dev/null)
PC_LIBS   := $(shell $(PKG_CONFIG) --libs $(LIBS_PC) 2>/dev/null)

OPT       ?= -O2 -g
WARN      := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter -Wno-missing-field-initializers
PROJ_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -MMD -MP -Isrc $(PC_CFLAGS)
PROJ_LDLIBS := $(PC_LIBS) -lm

# SANITIZER=address, undefined, or both: address,undefined (what CI runs the suite under)
ifneq ($(SANITIZER),)
  PROJ_CFLAGS += -fsanitize=$(SANITIZER) -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  PROJ_LDFLAGS += -fsanitize=$(SANITIZER)
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

$(BUILD)/%.o: %.c | pc-check
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(PROJ_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LINK  $@"
	$(Q)$(CC) $(PROJ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PROJ_LDLIBS) -lcmocka $(LDLIBS)

# Before anything is compiled: every library of LIBS_PC known to pkg-config, or stop naming the missing
# ones (rather than a wall of compiler errors about headers). A recipe, not a parse-time $(shell): `make
# run`, `make test` and `make deps` install the packages first and compile only after that.
.PHONY: pc-check
pc-check:
	@if ! command -v $(PKG_CONFIG) >/dev/null 2>&1; then \
	    echo "error: $(PKG_CONFIG) is not installed; install the build dependencies with scripts/install-deps.sh" \
	         "(or make deps)" >&2; \
	    exit 1; \
	fi; \
	missing=; \
	for p in $(LIBS_PC); do $(PKG_CONFIG) --exists $$p || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "error: $(PKG_CONFIG) cannot find:$$missing; install the build dependencies with" \
	         "scripts/install-deps.sh (or make deps)" >&2; \
	    exit 1; \
	fi

# Install the Debian packages only when something is missing.
deps:
	$(Q)scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

run: deps
	$(Q)$(MAKE) --no-print-directory all
	./$(BUILD)/cachetoryd conf/cachetoryd.conf

unit: $(UNIT_BIN)

.PHONY: check
check:
	$(Q)scripts/check-layout

test: deps
	$(Q)$(MAKE) --no-print-directory all unit
	$(Q)BUILD=$(BUILD) VALGRIND=$(VALGRIND) tests/run.sh

# Install layout. PREFIX=/usr SYSCONFDIR=/etc gives Debian's: /usr/bin/cachetoryd,
# /etc/cachetoryd/cachetoryd.conf, /usr/lib/systemd/system/cachetoryd.service, /usr/share/man/man{5,8}.
# The unit and the man pages name the binary, the config and the unit by these paths (@BINDIR@,
# @SYSCONFDIR@, @UNITDIR@ filled in by sed), without DESTDIR. An existing, edited config file is kept
# (a reinstall does not undo the operator's edits) and the shipped one goes next to it as
# cachetoryd.conf.dist. Man pages are gzipped (-9n, as dh_compress does) unless GZIP_MAN=no.
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
UNITDIR   ?= $(PREFIX)/lib/systemd/system
GZIP_MAN  ?= yes
INSTALL   ?= install
SUBST_PATHS = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@UNITDIR@|$(UNITDIR)|g'
MANPAGES  := man/cachetoryd.8 man/cachetoryd.conf.5
STAGE     := $(BUILD)/install
.PHONY: uninstall

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/cachetoryd $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 $(BUILD)/cachetoryd $(DESTDIR)$(BINDIR)/cachetoryd
	@conf=$(DESTDIR)$(SYSCONFDIR)/cachetoryd/cachetoryd.conf; \
	if [ -e "$$conf" ] && ! cmp -s conf/cachetoryd.conf "$$conf"; then \
		echo "$(INSTALL) -m 0644 conf/cachetoryd.conf $$conf.dist  (keeping the existing $$conf)"; \
		$(INSTALL) -m 0644 conf/cachetoryd.conf "$$conf.dist"; \
	else \
		echo "$(INSTALL) -m 0644 conf/cachetoryd.conf $$conf"; \
		$(INSTALL) -m 0644 conf/cachetoryd.conf "$$conf"; \
	fi
	$(INSTALL) -d $(STAGE)
	$(SUBST_PATHS) systemd/cachetoryd.service > $(STAGE)/cachetoryd.service
	$(INSTALL) -m 0644 $(STAGE)/cachetoryd.service $(DESTDIR)$(UNITDIR)/cachetoryd.service
	@set -e; for page in $(MANPAGES); do \
		name=$${page#man/}; sec=$${name##*.}; dest=$(DESTDIR)$(MANDIR)/man$$sec/$$name; \
		$(SUBST_PATHS) $$page > $(STAGE)/$$name; \
		rm -f $$dest $$dest.gz; \
		if [ "$(GZIP_MAN)" = yes ]; then \
			gzip -9n -c $(STAGE)/$$name > $(STAGE)/$$name.gz; \
			echo "$(INSTALL) -m 0644 $(STAGE)/$$name.gz $$dest.gz"; \
			$(INSTALL) -m 0644 $(STAGE)/$$name.gz $$dest.gz; \
		else \
			echo "$(INSTALL) -m 0644 $(STAGE)/$$name $$dest"; \
			$(INSTALL) -m 0644 $(STAGE)/$$name $$dest; \
		fi; \
	done

# Removes what install put in place, with the same PREFIX/SYSCONFDIR/DESTDIR. The config file goes
# only if it is unchanged from the shipped one; an edited one is kept, and said so.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cachetoryd $(DESTDIR)$(UNITDIR)/cachetoryd.service \
		$(DESTDIR)$(MANDIR)/man8/cachetoryd.8 $(DESTDIR)$(MANDIR)/man8/cachetoryd.8.gz \
		$(DESTDIR)$(MANDIR)/man5/cachetoryd.conf.5 $(DESTDIR)$(MANDIR)/man5/cachetoryd.conf.5.gz \
		$(DESTDIR)$(SYSCONFDIR)/cachetoryd/cachetoryd.conf.dist
	@conf=$(DESTDIR)$(SYSCONFDIR)/cachetoryd/cachetoryd.conf; \
	if [ -e "$$conf" ] && ! cmp -s conf/cachetoryd.conf "$$conf"; then \
		echo "keeping $$conf: it differs from conf/cachetoryd.conf (remove it by hand)"; \
	else \
		echo "rm -f $$conf"; rm -f "$$conf"; \
		rmdir $(DESTDIR)$(SYSCONFDIR)/cachetoryd 2>/dev/null || true; \
	fi

# ==== static binary and container image (Containerfile) ===========================================
#   make static    build-static/cachetoryd: one stripped, statically linked binary (objects in build-static/)
#   make image     localhost/cachetoryd:latest from the Containerfile, with podman (or docker where its
#                  daemon answers), FROM scratch: nothing is pulled from a registry
#   rm -rf build-static             removes them (the objects are the plain build's, in build/)
#
# Host names without NSS plugins: glibc (2.34 and later) has its "files" and "dns" lookups built into libc,
# so the static binary's getaddrinfo reads /etc/hosts and asks resolv.conf's servers in an image that holds
# no libnss_*.so. The linker's warning about getaddrinfo in static programs is about the other NSS modules
# (mdns, ldap, ...), which a container does not use. tests/integration/test_container.py checks both paths
# in an empty chroot: a name from /etc/hosts, and a name answered by a DNS server on 127.0.0.1:53 in a
# network namespace of its own.
STATIC_BUILD  ?= build-static
# the plain build's objects (build/, same flags): only the link differs
STATIC_OBJ    := $(SRC:%.c=build/%.o)
# Debian's static archives: libuv's is libuv_a.a; the rest are the usual lib*.a
STATIC_LDLIBS := -l:libuv_a.a -lhiredis -lz -lzstd -lmsgpackc -linih -lssl -lcrypto -lpthread -ldl -lrt -lm
IMAGE         ?= localhost/cachetoryd:latest
# podman, else docker when its daemon answers; CONTAINER_ENGINE=... chooses
CONTAINER_ENGINE ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || \
                      { docker info >/dev/null 2>&1 && echo docker; })
.PHONY: static image

# the objects come from the plain build, whatever SANITIZER says
static:
	$(Q)$(MAKE) --no-print-directory BUILD=build SANITIZER= $(STATIC_BUILD)/cachetoryd

$(STATIC_BUILD)/cachetoryd: $(STATIC_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LINK  $@ (static)"
	$(Q)$(CC) -static $(LDFLAGS) -o $@ $^ $(STATIC_LDLIBS) $(LDLIBS) 2>$@.ld.log || { cat $@.ld.log >&2; exit 1; }
	$(Q)grep -v -e 'statically linked applications requires at runtime' -e 'in function' $@.ld.log >&2 || true
	$(Q)strip $@

# The context holds only what the Containerfile copies, at the same paths as in the source tree (so
# `podman build -f Containerfile .` after `make static` works too); no registry is asked (--pull=never).
image: static
	@if [ -z "$(CONTAINER_ENGINE)" ]; then \
	    echo "error: neither podman nor a running docker found (scripts/install-deps.sh installs podman)" >&2; \
	    exit 1; \
	fi
	$(Q)rm -rf $(STATIC_BUILD)/context && mkdir -p $(STATIC_BUILD)/context/$(STATIC_BUILD) $(STATIC_BUILD)/context/conf
	$(Q)cp $(STATIC_BUILD)/cachetoryd $(STATIC_BUILD)/context/$(STATIC_BUILD)/cachetoryd
	$(Q)cp conf/container.conf $(STATIC_BUILD)/context/conf/container.conf
	$(CONTAINER_ENGINE) build $(if $(filter podman,$(CONTAINER_ENGINE)),--pull=never --layers=false) \
	    --build-arg STATIC_BUILD=$(STATIC_BUILD) -t $(IMAGE) -f Containerfile $(STATIC_BUILD)/context
	@$(CONTAINER_ENGINE) image inspect --format '$(IMAGE): {{.Size}} bytes' $(IMAGE)

clean:
	rm -rf $(BUILD) build-address build-undefined build-address-undefined

-include $(OBJ:.o=.d) $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d)

# ==== fuzzing (tests/fuzz/README.md) =============================================================
#   make fuzz          libFuzzer harnesses build/fuzz/<target>, clang + ASan + UBSan, objects in
#                      build/fuzz/obj (never mixed with the $(CC) build); run one: scripts/fuzz TARGET SECONDS
#   make fuzz-replay   every harness linked with tests/fuzz/replay_main.c by $(CC) with the project's flags
#                      (SANITIZER= applies) into build/fuzz-replay/<target>, run once over
#                      tests/fuzz/corpus/<target>/; one line per target; non-zero if any input fails.
# A target is a file tests/fuzz/fuzz_<target>.c defining LLVMFuzzerTestOneInput.

FUZZ_CC       ?= clang
# pointer-overflow stays recoverable only so that tests/fuzz/ubsan.supp can list known findings; scripts/fuzz
# runs with UBSAN_OPTIONS=halt_on_error=1, so anything else still stops the run
FUZZ_SAN      ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize-recover=pointer-overflow \
                 -fno-omit-frame-pointer
FUZZ_CFLAGS   ?= -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -MMD -MP -Isrc -Itests/fuzz $(PC_CFLAGS) \
                 -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_LDFLAGS  ?= -fsanitize=fuzzer $(FUZZ_SAN)
FUZZ_REPLAY_TIMEOUT ?= 600

FUZZ_DIR      := $(BUILD)/fuzz
FUZZ_OBJDIR   := $(FUZZ_DIR)/obj
FUZZ_SRC      := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS  := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_BIN      := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)
# the project without main.c, as an archive: each harness takes only the objects it uses
FUZZ_LIB_OBJ  := $(patsubst %.c,$(FUZZ_OBJDIR)/%.o,$(filter-out src/main.c,$(SRC)))
FUZZ_LIB      := $(FUZZ_OBJDIR)/libcachetoryd.a
FUZZ_HARN_OBJ := $(FUZZ_SRC:%.c=$(FUZZ_OBJDIR)/%.o)

FUZZ_REPLAY_DIR := $(BUILD)/fuzz-replay
FUZZ_REPLAY_BIN := $(FUZZ_TARGETS:%=$(FUZZ_REPLAY_DIR)/%)

.PHONY: fuzz fuzz-replay fuzz-flags-check
fuzz: $(FUZZ_BIN)

# objects are rebuilt when the compiler or the flags change (they are not in the .d files)
FUZZ_STAMP := $(FUZZ_OBJDIR)/flags
$(FUZZ_STAMP): fuzz-flags-check
	@mkdir -p $(dir $@)
	@echo '$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_LDFLAGS) $(PROJ_LDLIBS)' | cmp -s - $@ || \
	    echo '$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_LDFLAGS) $(PROJ_LDLIBS)' >$@

$(FUZZ_LIB_OBJ): $(FUZZ_OBJDIR)/%.o: %.c $(FUZZ_STAMP) | pc-check
	@mkdir -p $(dir $@)
	@echo "  FUZZCC $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

# harnesses without coverage instrumentation: their checks and oracles would only slow the search down
$(FUZZ_HARN_OBJ): $(FUZZ_OBJDIR)/%.o: %.c $(FUZZ_STAMP) | pc-check
	@mkdir -p $(dir $@)
	@echo "  FUZZCC $<"
	$(Q)$(FUZZ_CC) $(filter-out -fsanitize=fuzzer-no-link,$(FUZZ_CFLAGS)) -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@echo "  AR    $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_DIR)/%: $(FUZZ_OBJDIR)/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	@echo "  LINK  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $(filter %.o %.a,$^) $(PROJ_LDLIBS)

# replay: the harnesses and replay_main.c are compiled by the ordinary $(BUILD)/%.o rule
$(FUZZ_REPLAY_DIR)/%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LINK  $@"
	$(Q)$(CC) $(PROJ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PROJ_LDLIBS) $(LDLIBS)

# the harness objects are made only through the pattern above: keep them (make would delete them as
# intermediate files, and rebuild them every time)
.SECONDARY: $(FUZZ_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/fuzz/replay_main.o

fuzz-replay: $(FUZZ_REPLAY_BIN)
	$(Q)fail=0; \
	for t in $(FUZZ_TARGETS); do \
	    timeout -k 10 $(FUZZ_REPLAY_TIMEOUT) $(FUZZ_REPLAY_DIR)/$$t tests/fuzz/corpus/$$t || \
	        { echo "fuzz-replay: $$t FAILED (exit $$?)"; fail=1; }; \
	done; \
	exit $$fail

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_HARN_OBJ:.o=.d) $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/fuzz/%.d) \
         $(BUILD)/tests/fuzz/replay_main.d
# ==== end of fuzzing =============================================================================
