# subinterp — build, test and demo. Every target installs what it needs.
#
#   make demo     build everything and run the demo
#   make test     build everything and run the test suite
#   make guest    build the wasm guests under guest/ with zig
#   make bench    the side-by-side benchmark (not there yet)
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

.PHONY: all setup guest build test demo bench examples clean

all: build guest

setup: $(ZIG)

# zig from the `ziglang` package on PyPI, into a project-local, git-ignored folder.
$(ZIG):
	@mkdir -p $(ZIG_DIR)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(ZIG_DIR) "ziglang==$(ZIG_VER)"
	@test -x $(ZIG) && touch $(ZIG)

guest: $(GUEST_WASM)

$(GUEST_OUT)/%.wasm: guest/examples/%.c guest/include/subinterp.h | $(ZIG)
	@mkdir -p $(GUEST_OUT)
	$(ZIG) cc $(GUEST_CFLAGS) $(if $(findstring /hello.c,$<),,-mexec-model=reactor) $< -o $@

build:
	$(CARGO) build --release

test: guest
	$(CARGO) test --release

demo: guest build
	$(CARGO) run --release --quiet --example pipeline

examples: guest
	$(CARGO) run --release --quiet --example pipeline

bench:
	@echo "make bench: the side-by-side benchmark is not there yet (see the speed issue)."

clean:
	$(CARGO) clean
	rm -rf $(TOOLS)
