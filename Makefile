# pbiport — one Makefile for everything.
#   make            build bin/pbiport and bin/pbiport.fcgi
#   make deps       install the Debian packages we build and test with (PostgreSQL among them:
#                   the tests start throwaway clusters with tests/tools/pg_cluster.py)
#   make check      every test (unit, CLI, corpus, integration), and those that touch the database
#                   again on PostgreSQL (a throwaway cluster, in parallel: tests/run.sh postgresql)
#   make check-pg   only the PostgreSQL part: the unit tests and the database integration tests
#   make check-asan the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       libFuzzer harnesses (FUZZ_SECONDS each, default 60)
#   make bench      benchmarks (results in bench/README.md)
#
# Sources are picked up by folder: any runtime/*.c, core/*/*.c (store, lang, flow), msapi/*.c and handlers/*.c
# goes into build/libpbiport.a; cli/*.c into bin/pbiport; every tests/unit/test_*.c becomes
# its own cmocka binary linked against the library.

PKGS      := lua5.4 sqlite3 jansson libcurl openssl yaml-0.1 libutf8proc libgvc libcgraph fcgi
CC        ?= cc
BUILD     ?= build
BIN       ?= bin
DATADIR   ?= $(CURDIR)
CFLAGS_PKG := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS_PKG   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# libfcgi ships no .pc file on Debian; fall back to plain -lfcgi.
ifeq ($(LIBS_PKG),)
LIBS_PKG := $(shell pkg-config --libs lua5.4 sqlite3 jansson libcurl openssl yaml-0.1 libutf8proc libgvc libcgraph 2>/dev/null) -lfcgi
CFLAGS_PKG := $(shell pkg-config --cflags lua5.4 sqlite3 jansson libcurl openssl yaml-0.1 libutf8proc libgvc libcgraph 2>/dev/null)
endif
# Graphviz's dot layout is linked in (core/flow/lineage_svg.c) rather than loaded as a plugin:
# its library lives in Graphviz's plugin folder, which the binary is told about.
GV_PLUGINS := $(shell pkg-config --variable=libdir libgvc 2>/dev/null)/graphviz
LIBS_PKG  += -L$(GV_PLUGINS) -Wl,-rpath,$(GV_PLUGINS) -lgvplugin_dot_layout
# libpq (the PostgreSQL driver, runtime/db_pg.c): its .pc file, else what pg_config says.
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I$$(pg_config --includedir 2>/dev/null))
PQ_LIBS   := $(shell pkg-config --libs libpq 2>/dev/null || echo -L$$(pg_config --libdir 2>/dev/null) -lpq)
CFLAGS_PKG += $(PQ_CFLAGS)
LIBS_PKG  += $(PQ_LIBS)

OPT       ?= -O2 -g
SANITIZE  ?=
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter -Wformat=2
CFLAGS    += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -I. $(CFLAGS_PKG) \
             -DPBIPORT_DATADIR='"$(DATADIR)"' -fno-common
ifneq ($(SANITIZE),)
CFLAGS    += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=$(SANITIZE)
endif
LDLIBS    += $(LIBS_PKG) -lm -lpthread

LIB_SRC   := $(sort $(wildcard runtime/*.c core/*/*.c msapi/*.c handlers/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC   := $(sort $(wildcard cli/*.c))
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
LIB       := $(BUILD)/libpbiport.a

.PHONY: all deps check check-unit check-pg check-cli check-integration check-emulator check-asan fuzz bench clean

all: $(BIN)/pbiport $(BIN)/pbiport.fcgi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/pbiport: $(CLI_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

# The FastCGI binary is the same program: started as pbiport.fcgi it serves requests.
$(BIN)/pbiport.fcgi: $(BIN)/pbiport
	ln -sf pbiport $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

deps:
	bash deploy/deps.sh

check: all $(UNIT_BIN)
	bash tests/run.sh

check-unit: $(UNIT_BIN)
	bash tests/run.sh unit

# The unit tests and the database integration tests with every test database a PostgreSQL one
# (PBIPORT_TEST_DB=postgresql), in a throwaway cluster (tests/tools/pg_cluster.py) removed afterwards.
check-pg: all $(UNIT_BIN)
	bash tests/run.sh postgresql

check-asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/bin OPT="-O1 -g" SANITIZE=address,undefined check \
	  PBIPORT_BIN_DIR=build-asan/bin

fuzz:
	bash tests/fuzz/run.sh

bench: all
	bash bench/run.sh

clean:
	rm -rf build build-asan build-fuzz bin

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_BIN:=.d)
