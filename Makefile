# subinterp — build, test and demo. Every target installs what it needs.
#
#   make demo     build everything and run the demo
#   make test     build everything and run the test suite
#   make guest    build the wasm guests under guest/ with zig (the Python
#                 guest's first build fetches and cross-builds CPython)
#   make python-guest   only target/guest/python.wasm
#   make bench    the side-by-side benchmark against the peers
#   make soak     a minute of one tenant attacking while another works
#   make soak-nats  10,000 remote runs through NATS while workers are killed
#   make demo-cluster  the demo's word count over three workers through NATS
#   make clean    remove build outputs and the local tool folder

CARGO    ?= cargo
PYTHON   ?= python3
TOOLS    := .tools
ZIG_DIR  := $(TOOLS)/zig
ZIG      := $(ZIG_DIR)/ziglang/zig
ZIG_VER  := 0.17.1
GUEST_OUT := target/guest
GUEST_CFLAGS := -target wasm32-wasi -O2 -Wall -Wextra -Werror -Iguest/include -Wl,--strip-debug -Wl,-z,stack-size=1048576

GUEST_SRCS := $(wildcard guest/examples/*.c)
GUEST_WASM := $(patsubst guest/examples/%.c,$(GUEST_OUT)/%.wasm,$(GUEST_SRCS))

# The JavaScript guest: QuickJS-ng from the pinned rquickjs-sys crate (cargo
# fetches it into its registry; guest/js/Cargo.toml pins the version).
JS_OUT   := $(GUEST_OUT)/js
QJS_SRCS := quickjs libregexp libunicode dtoa
QJS_OBJS := $(patsubst %,$(JS_OUT)/%.o,$(QJS_SRCS))
QJS_CFLAGS := -target wasm32-wasi -O2 -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS -w
JS_LDFLAGS := -mexec-model=reactor -lwasi-emulated-signal -lwasi-emulated-process-clocks \
	-Wl,-z,stack-size=1048576 -Wl,--strip-debug

.PHONY: all setup guest python-guest build test demo demo-cluster bench examples fuzz soak soak-nats clean FORCE

all: build guest

setup: $(ZIG)

# zig from the `ziglang` package on PyPI, into a project-local, git-ignored folder.
$(ZIG):
	@mkdir -p $(ZIG_DIR)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(ZIG_DIR) "ziglang==$(ZIG_VER)"
	@test -x $(ZIG) && touch $(ZIG)

guest: $(GUEST_WASM) $(GUEST_OUT)/js.wasm $(GUEST_OUT)/python.wasm

# Where cargo put the QuickJS sources (downloads the pinned crate if needed).
$(JS_OUT)/qjs-dir:
	@mkdir -p $(JS_OUT)
	$(CARGO) metadata --locked --format-version 1 --manifest-path guest/js/Cargo.toml \
	  | $(PYTHON) -c 'import json,sys,os; m=json.load(sys.stdin); print([os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"]=="rquickjs-sys"][0] + "/quickjs")' > $@.tmp
	@test -f "$$(cat $@.tmp)/quickjs.c" && mv $@.tmp $@

# quickjs.c alone takes ~45 s: each object is rebuilt only when missing.
$(JS_OUT)/%.o: $(JS_OUT)/qjs-dir | $(ZIG)
	$(ZIG) cc $(QJS_CFLAGS) -c "$$(cat $(JS_OUT)/qjs-dir)/$*.c" -o $@

# quickjs.c is compiled from a copy with its stack check on under WASI.
$(JS_OUT)/quickjs.c: $(JS_OUT)/qjs-dir guest/js/patch_quickjs.py
	$(PYTHON) guest/js/patch_quickjs.py "$$(cat $(JS_OUT)/qjs-dir)/quickjs.c" $@

$(JS_OUT)/quickjs.o: $(JS_OUT)/quickjs.c | $(ZIG)
	$(ZIG) cc $(QJS_CFLAGS) -I"$$(cat $(JS_OUT)/qjs-dir)" -c $< -o $@

# Each guest/js/NAME.js becomes NAME.h: a byte array NAME_js[] and NAME_js_len
# (NUL-terminated, as JS_Eval wants; the NUL is not counted).
$(JS_OUT)/%.h: guest/js/%.js
	@mkdir -p $(JS_OUT)
	$(PYTHON) -c 'import sys; d=open(sys.argv[1],"rb").read(); n=sys.argv[2]; print("static const unsigned char %s_js[] = {" % n + ",".join(str(b) for b in d + b"\0") + "};\nstatic const unsigned int %s_js_len = %d;" % (n, len(d)))' $< $* > $@

# The web-standard globals (web.c, url.c, sha.c, encoding.c, web.js, encoding.js) and the console
# (console.js). URL parsing is ada, the WHATWG URL parser (C++ with a C API),
# from the sources the pinned ada-url crate vendors (guest/js/web/Cargo.toml),
# compiled without exceptions and linked with zig's libc++; the crate's
# web-platform-tests data is what tests/it/web.rs checks URL against.
WEB_SRCS := guest/js/web.c guest/js/url.c guest/js/sha.c guest/js/encoding.c
WEB_DEPS := $(WEB_SRCS) guest/js/web.h guest/js/sha.h $(JS_OUT)/web_js.h $(JS_OUT)/console_js.h $(JS_OUT)/encoding_js.h $(JS_OUT)/ada.o
ADA_CXXFLAGS := -target wasm32-wasi -O2 -std=c++20 -fno-exceptions -fno-rtti -DADA_INCLUDE_URL_PATTERN=0 -w

# Where cargo put the ada-url crate (downloads the pinned crate if needed).
$(JS_OUT)/ada-dir: guest/js/web/Cargo.toml guest/js/web/Cargo.lock
	@mkdir -p $(JS_OUT)
	$(CARGO) metadata --locked --format-version 1 --manifest-path guest/js/web/Cargo.toml \
	  | $(PYTHON) -c 'import json,sys,os; m=json.load(sys.stdin); print([os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"]=="ada-url"][0])' > $@.tmp
	@test -f "$$(cat $@.tmp)/deps/ada.cpp" && mv $@.tmp $@

$(JS_OUT)/ada.o: $(JS_OUT)/ada-dir | $(ZIG)
	$(ZIG) c++ $(ADA_CXXFLAGS) -c "$$(cat $(JS_OUT)/ada-dir)/deps/ada.cpp" -o $@

# A script as a C array, NUL-terminated as JS_Eval wants (not counted in _len).
$(JS_OUT)/%_js.h: guest/js/%.js
	@mkdir -p $(JS_OUT)
	$(PYTHON) -c 'import sys; d=open(sys.argv[1],"rb").read(); n=sys.argv[2]; print("static const unsigned char %s_js[] = {" % n + ",".join(str(b) for b in d + b"\0") + "};\nstatic const unsigned int %s_js_len = %d;" % (n, len(d)))' $< $* > $@

# The built-in modules (node:fs, node:path, ...), embedded as C arrays.
NODE_JS := $(sort $(wildcard guest/js/node/*.js))
$(JS_OUT)/node_modules.h: guest/js/embed_modules.py $(NODE_JS)
	@mkdir -p $(JS_OUT)
	$(PYTHON) guest/js/embed_modules.py $@ $(NODE_JS)

# The guest's C files (the event loop is loop.c and loop.js; the web globals
# web.c, url.c, sha.c and encoding.c; files and module files fs.c and node/*.js;
# import.meta meta.c; the batch forms of recv and send batch.c).
JS_C := guest/js/subinterp_js.c guest/js/loop.c $(WEB_SRCS) guest/js/fs.c guest/js/meta.c guest/js/batch.c

$(GUEST_OUT)/js.wasm: $(JS_C) guest/js/js_guest.h guest/js/fs.h guest/include/subinterp.h $(JS_OUT)/prelude.h $(JS_OUT)/loop.h $(JS_OUT)/node_modules.h $(QJS_OBJS) $(WEB_DEPS) | $(ZIG)
	$(ZIG) cc $(GUEST_CFLAGS) -D_WASI_EMULATED_SIGNAL -I$(JS_OUT) -I"$$(cat $(JS_OUT)/qjs-dir)" \
	  -I"$$(cat $(JS_OUT)/ada-dir)/deps" $(JS_C) $(QJS_OBJS) $(JS_OUT)/ada.o \
	  -lc++ -fno-exceptions $(JS_LDFLAGS) -o $@

$(GUEST_OUT)/%.wasm: guest/examples/%.c guest/include/subinterp.h | $(ZIG)
	@mkdir -p $(GUEST_OUT)
	$(ZIG) cc $(GUEST_CFLAGS) $(if $(findstring /hello.c,$<),,-mexec-model=reactor) $< -o $@

# ---- The Python guest --------------------------------------------------------
# CPython 3.13.5 cross-built to wasm32-wasip1 with zig, linked as a reactor
# with guest/python/subinterp_py.c and its standard library frozen in (no
# directory grant needed). Every step is a file under .tools/cpython/ (or
# target/guest/py/) and runs again only when its inputs change:
#
#   tarball      Debian's python3.13 source package (trixie) has upstream's
#                tarball as its .orig.tar.xz: guest/python/fetch_cpython.py
#                fetches it with apt-get through a private sources list, or
#                CPYTHON_SRC=/path/to/Python-3.13.5.tar.xz is copied; either
#                way it must match PY_SHA256
#   build-native a native CPython of the same version, which the cross build
#                needs to freeze its own modules, and which freezes the stdlib
#   build-wasi   CPython's configure + make for wasm32-wasip1 (libpython and
#                the static module libraries; python.wasm, a WASI command, as
#                a link check)
#   stdlib       guest/python/freeze_stdlib.py: the stdlib and the guest's own
#                modules (PY_MODULES: interpreters.py) as marshalled code,
#                target/guest/py/stdlib.bin, and its table, stdlib.c
#   python.wasm  the reactor
PY_VER      := 3.13.5
PY_PKG      := python3.13
PY_SHA256   := 93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
PY_JOBS     ?= 2
CPYTHON_SRC ?=
PY_TOOLS    := $(TOOLS)/cpython
PY_TARBALL  := $(PY_TOOLS)/$(PY_PKG)_$(PY_VER).orig.tar.xz
PY_SRC      := $(PY_TOOLS)/Python-$(PY_VER)
PY_NATIVE   := $(PY_TOOLS)/build-native
PY_WASI     := $(PY_TOOLS)/build-wasi
PY_OUT      := $(GUEST_OUT)/py
# CPython's make, without this make's command-line variables or jobserver.
PY_MAKE     := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(MAKE) -j$(PY_JOBS)
# zig links the stack first by itself (a stack overflow traps below address
# 0), and rejects CPython's -Wl,--stack-first.
PY_WASI_LDFLAGS := -z stack-size=8388608 -Wl,--initial-memory=20971520
# The Makefile's absolute path for the zig wrapper: configure runs elsewhere.
PY_ZIG      := $(abspath $(ZIG))
PY_WASI_CONFIGURE = CONFIG_SITE=$(abspath $(PY_WASI))/config.site $(PY_DEPS_ENV) \
	CC="$(PY_ZIG) cc -target wasm32-wasi" CPP="$(PY_ZIG) cc -target wasm32-wasi -E" \
	AR="$(PY_ZIG) ar" RANLIB="$(PY_ZIG) ranlib" CFLAGS="-Wno-error=date-time" \
	PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR= PKG_CONFIG_SYSROOT_DIR= \
	../Python-$(PY_VER)/configure --host=wasm32-unknown-wasip1 --build=$$(../Python-$(PY_VER)/config.guess) \
	--with-build-python=$(abspath $(PY_NATIVE))/python --disable-test-modules --without-ensurepip \
	OPT="-DNDEBUG -O2 -Wall"
PY_INC      := -I$(PY_WASI) -I$(PY_SRC)/Include

# zlib and SQLite for the zlib and _sqlite3 modules: the C sources that the
# crates pinned in guest/python/Cargo.toml carry (cargo fetches them, as it
# does QuickJS's), built into static libraries that configure is pointed at.
# SQLite 3.54 knows WASI (__wasi__: no locking, WAL, mmap or extensions).
PY_DEPS     := $(PY_TOOLS)/deps
ZLIB_SRCS   := adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback inffast \
	inflate inftrees trees uncompr zutil
SQLITE_CFLAGS := -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_TEMP_STORE=3 \
	-DSQLITE_DEFAULT_FOREIGN_KEYS=1 -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE \
	-DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_USE_URI -DHAVE_LOCALTIME_R -DLONGDOUBLE_TYPE=double \
	-D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_GETPID -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_MMAN
PY_DEPS_ENV := ZLIB_CFLAGS="-I$(abspath $(PY_DEPS))/zlib/include" ZLIB_LIBS="-L$(abspath $(PY_DEPS))/zlib -lz" \
	LIBSQLITE3_CFLAGS="-I$(abspath $(PY_DEPS))/sqlite/include" \
	LIBSQLITE3_LIBS="-L$(abspath $(PY_DEPS))/sqlite -lsqlite3 -lwasi-emulated-mman"
PY_LDFLAGS  := -mexec-model=reactor -Wl,-z,stack-size=8388608 -Wl,--strip-debug

python-guest: $(GUEST_OUT)/python.wasm

$(PY_TARBALL):
	@mkdir -p $(PY_TOOLS)
	@rm -f $@
	if [ -n "$(CPYTHON_SRC)" ]; then cp "$(CPYTHON_SRC)" $@; \
	else $(PYTHON) guest/python/fetch_cpython.py $(PY_TOOLS) $(PY_PKG) $(PY_VER); fi
	@echo "$(PY_SHA256)  $@" | sha256sum -c --quiet - \
	  || { echo "$@: not CPython $(PY_VER)'s source (sha256 differs from PY_SHA256)"; mv $@ $@.bad; exit 1; }

$(PY_SRC)/.extracted: $(PY_TARBALL)
	rm -rf $(PY_SRC)
	tar -xf $< -C $(PY_TOOLS)
	@touch $@

# Only `python` and pybuilddir.txt (not the shared extension modules): the
# build steps and freeze_stdlib.py need nothing more. -O1 without -g: it runs
# a few build scripts, so build time matters more than its speed.
$(PY_NATIVE)/.built: $(PY_SRC)/.extracted
	rm -rf $(PY_NATIVE) && mkdir -p $(PY_NATIVE)
	cd $(PY_NATIVE) && ../Python-$(PY_VER)/configure --disable-test-modules --without-ensurepip \
	  OPT="-DNDEBUG -O1" > configure.log 2>&1 || { tail -30 configure.log; exit 1; }
	$(PY_MAKE) -C $(PY_NATIVE) python pybuilddir.txt > $(PY_NATIVE)/make.log 2>&1 \
	  || { tail -30 $(PY_NATIVE)/make.log; exit 1; }
	@touch $@

# Rewritten only when the configure line or the answers change.
$(PY_WASI)/configure.args: FORCE
	@mkdir -p $(PY_WASI)
	@echo '$(PY_WASI_CONFIGURE)' | cmp -s - $@ || echo '$(PY_WASI_CONFIGURE)' > $@

# Where cargo put the two crates (downloads them if needed): two lines.
$(PY_DEPS)/crate-dirs: guest/python/Cargo.toml guest/python/Cargo.lock
	@mkdir -p $(PY_DEPS)
	$(CARGO) metadata --locked --format-version 1 --manifest-path guest/python/Cargo.toml \
	  | $(PYTHON) -c 'import json,sys,os; m=json.load(sys.stdin); d={p["name"]: os.path.dirname(p["manifest_path"]) for p in m["packages"]}; print(d["libz-sys"]); print(d["libsqlite3-sys"])' > $@.tmp
	@test -f "$$(sed -n 1p $@.tmp)/src/zlib/zlib.h" && test -f "$$(sed -n 2p $@.tmp)/sqlite3/sqlite3.c" && mv $@.tmp $@

$(PY_DEPS)/zlib/libz.a: $(PY_DEPS)/crate-dirs | $(ZIG)
	rm -rf $(PY_DEPS)/zlib && mkdir -p $(PY_DEPS)/zlib/include
	src="$$(sed -n 1p $<)/src/zlib"; cp $$src/zlib.h $$src/zconf.h $(PY_DEPS)/zlib/include/ && \
	for f in $(ZLIB_SRCS); do \
	  $(ZIG) cc -target wasm32-wasi -O2 -w -DSTDC -DZ_HAVE_UNISTD_H -c $$src/$$f.c -o $(PY_DEPS)/zlib/$$f.o || exit 1; \
	done
	$(ZIG) ar rcs $@ $(PY_DEPS)/zlib/*.o

$(PY_DEPS)/sqlite/libsqlite3.a: $(PY_DEPS)/crate-dirs | $(ZIG)
	rm -rf $(PY_DEPS)/sqlite && mkdir -p $(PY_DEPS)/sqlite/include
	src="$$(sed -n 2p $<)/sqlite3"; cp $$src/sqlite3.h $(PY_DEPS)/sqlite/include/ && \
	$(ZIG) cc -target wasm32-wasi -O2 -w $(SQLITE_CFLAGS) -c $$src/sqlite3.c -o $(PY_DEPS)/sqlite/sqlite3.o
	$(ZIG) ar rcs $@ $(PY_DEPS)/sqlite/sqlite3.o

$(PY_WASI)/config.status: $(PY_WASI)/configure.args guest/python/config.site $(PY_NATIVE)/.built \
		$(PY_DEPS)/zlib/libz.a $(PY_DEPS)/sqlite/libsqlite3.a | $(ZIG)
	cat $(PY_SRC)/Tools/wasm/config.site-wasm32-wasi guest/python/config.site > $(PY_WASI)/config.site
	cd $(PY_WASI) && $(PY_WASI_CONFIGURE) > configure.log 2>&1 || { tail -30 configure.log; exit 1; }
	@touch $@

# Also writes link.txt: the libraries the reactor links besides libpython,
# read from CPython's Makefile (LIBS, MODLIBS, SYSLIBS) with absolute paths.
$(PY_WASI)/.built: $(PY_WASI)/config.status guest/python/link.mk
	$(PY_MAKE) -C $(PY_WASI) CONFIGURE_LDFLAGS_NODIST="$(PY_WASI_LDFLAGS)" python.wasm pybuilddir.txt \
	  > $(PY_WASI)/make.log 2>&1 || { tail -30 $(PY_WASI)/make.log; exit 1; }
	$(PY_MAKE) -s -C $(PY_WASI) -f Makefile -f $(abspath guest/python/link.mk) print-link > $(PY_WASI)/link.txt
	@touch $@

# The guest's own Python modules, frozen in with the stdlib.
PY_MODULES  := guest/python/interpreters.py

$(PY_OUT)/stdlib.c: guest/python/freeze_stdlib.py $(PY_MODULES) $(PY_NATIVE)/.built $(PY_WASI)/.built
	@mkdir -p $(PY_OUT)
	$(PY_NATIVE)/python -E -S guest/python/freeze_stdlib.py $(PY_SRC) \
	  $(PY_WASI)/$$(cat $(PY_WASI)/pybuilddir.txt) $(PY_OUT)/stdlib.bin $@ $(PY_MODULES)

$(PY_OUT)/stdlib.o: $(PY_OUT)/stdlib.c | $(ZIG)
	$(ZIG) cc -target wasm32-wasi -O2 -std=c23 $(PY_INC) -c $< -o $@

$(PY_OUT)/%.o: guest/python/%.c guest/python/module.h guest/include/subinterp.h $(PY_WASI)/.built | $(ZIG)
	@mkdir -p $(PY_OUT)
	$(ZIG) cc -target wasm32-wasi -O2 -Wall -Wextra -Werror -Iguest/include $(PY_INC) -c $< -o $@

$(GUEST_OUT)/python.wasm: $(PY_OUT)/subinterp_py.o $(PY_OUT)/module.o $(PY_OUT)/stdlib.o $(PY_WASI)/.built | $(ZIG)
	$(ZIG) cc -target wasm32-wasi $(PY_LDFLAGS) $(PY_OUT)/subinterp_py.o $(PY_OUT)/module.o $(PY_OUT)/stdlib.o \
	  $(PY_WASI)/libpython3.13.a $$(cat $(PY_WASI)/link.txt) -o $@

# The library embeds the JavaScript guest (build.rs): it is built first.
build: $(GUEST_OUT)/js.wasm
	$(CARGO) build --release

test: guest
	@command -v nats-server >/dev/null || echo "make test: nats-server is not on PATH, so the NATS tests (tests/it/nats.rs) pass without running (apt install nats-server)"
	$(CARGO) test --release
	$(MAKE) --no-print-directory examples

# The ABI fuzzer for longer than `make test` gives it (FUZZ_SECS, default 300;
# FUZZ_SEED picks another random sequence).
FUZZ_SECS ?= 300
fuzz: guest
	SUBINTERP_FUZZ_SECS=$(FUZZ_SECS) $(if $(FUZZ_SEED),SUBINTERP_FUZZ_SEED=$(FUZZ_SEED)) \
	  $(CARGO) test --release --test it hostile::fuzz -- --nocapture

# The multi-tenant soak for longer than `make test` gives it (SOAK_SECS,
# default 60): one tenant runs every attack in a loop while another echoes
# messages; the host's memory, threads and descriptors must come back.
SOAK_SECS ?= 60
soak: guest
	SUBINTERP_SOAK_SECS=$(SOAK_SECS) $(CARGO) test --release --test it \
	  hardening::one_tenant_attacks_while_another_works -- --nocapture

# Remote runs through NATS under load (SOAK_REQUESTS, default 10000): three
# workers, one killed and replaced every 50 results; every request must get
# exactly one result. Needs nats-server on PATH.
SOAK_REQUESTS ?= 10000
soak-nats: guest
	SUBINTERP_NATS_REQUESTS=$(SOAK_REQUESTS) $(CARGO) test --release --test it \
	  nats::requests_survive_workers_killed_mid_stream -- --nocapture

demo: guest build
	$(CARGO) run --release --quiet --example demo

# A nats-server, three workers and the word count spread over them
# (examples/cluster/); stops all it started. Needs nats-server on PATH.
demo-cluster: guest build
	CARGO="$(CARGO)" sh examples/cluster/demo-cluster.sh

# Every example checks its own result and exits non-zero when it is wrong.
EXAMPLES := demo pipeline hello ping_pong zero_copy_pipeline fan_out plugin_host untrusted
examples: guest
	$(CARGO) build --release --quiet --examples
	@set -e; for e in $(EXAMPLES); do \
	  echo "== example $$e"; \
	  $(CARGO) run --release --quiet --example $$e; \
	done

# The side-by-side benchmark (BENCH_ARGS=--quick for a short run); prints a
# table and writes target/bench/results.json.
bench: guest build
	$(CARGO) bench --bench side_by_side -- $(BENCH_ARGS)

clean:
	$(CARGO) clean
	rm -rf $(TOOLS)
