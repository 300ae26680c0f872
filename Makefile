# subinterp — build, test and demo. Every target installs what it needs.
#
#   make demo     build everything and run the demo
#   make test     build everything and run the test suite
#   make guest    build the wasm guests under guest/ with zig
#   make bench    the side-by-side benchmark against the peers
#   make soak     a minute of one tenant attacking while another works
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

.PHONY: all setup guest build test demo bench examples fuzz soak clean

all: build guest

setup: $(ZIG)

# zig from the `ziglang` package on PyPI, into a project-local, git-ignored folder.
$(ZIG):
	@mkdir -p $(ZIG_DIR)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(ZIG_DIR) "ziglang==$(ZIG_VER)"
	@test -x $(ZIG) && touch $(ZIG)

guest: $(GUEST_WASM) $(GUEST_OUT)/js.wasm

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

$(JS_OUT)/prelude.h: guest/js/prelude.js
	@mkdir -p $(JS_OUT)
	$(PYTHON) -c 'import sys; d=open(sys.argv[1],"rb").read(); print("static const unsigned char prelude_js[] = {" + ",".join(str(b) for b in d) + "};\nstatic const unsigned int prelude_js_len = %d;" % len(d))' $< > $@

$(GUEST_OUT)/js.wasm: guest/js/subinterp_js.c guest/include/subinterp.h $(JS_OUT)/prelude.h $(QJS_OBJS) | $(ZIG)
	$(ZIG) cc $(GUEST_CFLAGS) -D_WASI_EMULATED_SIGNAL -I$(JS_OUT) -I"$$(cat $(JS_OUT)/qjs-dir)" \
	  guest/js/subinterp_js.c $(QJS_OBJS) $(JS_LDFLAGS) -o $@

$(GUEST_OUT)/%.wasm: guest/examples/%.c guest/include/subinterp.h | $(ZIG)
	@mkdir -p $(GUEST_OUT)
	$(ZIG) cc $(GUEST_CFLAGS) $(if $(findstring /hello.c,$<),,-mexec-model=reactor) $< -o $@

build:
	$(CARGO) build --release

test: guest
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

demo: guest build
	$(CARGO) run --release --quiet --example demo

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
