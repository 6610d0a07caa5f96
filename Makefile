# mptcp-embedded: set-up, build, tests, demo, benchmarks.
# `make demo` and `make test` each do the whole set-up first (idempotent), as root on Debian.

SHELL      := /bin/bash
VENV       := .venv
PY         := $(VENV)/bin/python
PIP        := $(VENV)/bin/pip
MPY        := $(VENV)/bin/micropython
STAMP      := .stamp
APT_PKGS   := iproute2 nftables ethtool socat tshark tcpdump gcc python3-venv python3-dev procps
PYTHON3    ?= python3
NODE       ?= node
# 32-bit MicroPython for the unit suite: the WebAssembly port from npm, run by node,
# pinned and installed into $(WASM) (project-local, not global).
WASM       := .wasm
WASM_PKG   := @micropython/micropython-webassembly-pyscript
WASM_VER   := 1.27.0
# Type check of the board code against the Pico W's published stubs (`make typecheck`): the
# stubs (with their reduced stdlib) go to $(TYPECHECK)/stubs, apart from the venv, so that
# CPython's stdlib cannot hide an API the board lacks; pyright from npm, pinned.
TYPECHECK  := .typecheck
STUBS_PKG  := micropython-rp2-rpi-pico-w-stubs==1.29.0.post1
PYRIGHT_VER := 1.1.414
FW_SRC     := $(shell find firmware boards -name '*.py' 2>/dev/null)

.PHONY: setup apt venv node wasm typecheck-tools typecheck build test test-unit test-mpy test-wasm test-host test-interop \
        coreprof-wasm demo bench flash clean lab-down mutants

setup: apt venv wasm typecheck-tools build

apt: $(STAMP)/apt
$(STAMP)/apt: Makefile
	@mkdir -p $(STAMP)
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@touch $@

venv: $(STAMP)/venv
$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	@touch $@

# node and npm (Debian packages) if missing; the emscripten-built port needs node >= 16.
node: $(STAMP)/node
$(STAMP)/node:
	@mkdir -p $(STAMP)
	@if ! command -v $(NODE) >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  echo "apt: installing nodejs npm"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; \
	fi
	@$(NODE) -e 'const v = +process.versions.node.split(".")[0]; if (v < 16) { console.error("node " + process.version + " is too old: need >= 16"); process.exit(1); }'
	@touch $@

wasm: $(STAMP)/wasm-$(WASM_VER)
$(STAMP)/wasm-$(WASM_VER): $(STAMP)/node
	@mkdir -p $(STAMP) $(WASM)
	npm install --prefix $(WASM) --no-audit --no-fund --save-exact --loglevel=error $(WASM_PKG)@$(WASM_VER)
	@test -f $(WASM)/node_modules/$(WASM_PKG)/micropython.mjs
	@touch $@

typecheck-tools: $(STAMP)/typecheck-$(PYRIGHT_VER)
$(STAMP)/typecheck-$(PYRIGHT_VER): $(STAMP)/venv $(STAMP)/node Makefile
	@mkdir -p $(STAMP)
	rm -rf $(TYPECHECK)/stubs
	$(PIP) install -q --no-compile --target $(TYPECHECK)/stubs $(STUBS_PKG)
	npm install --prefix $(TYPECHECK)/node --no-audit --no-fund --save-exact --loglevel=error pyright@$(PYRIGHT_VER)
	@test -x $(TYPECHECK)/node/node_modules/.bin/pyright
	@touch $@

# firmware/ (mptcp, net, runtime, apps) and boards/pico_w against the stubs: pyrightconfig.json.
typecheck: setup
	$(TYPECHECK)/node/node_modules/.bin/pyright -p pyrightconfig.json

# Device bundles: firmware compiled with mpy-cross (native/viper modules per arch).
build: $(STAMP)/venv build/unix_lab/.built build/pico_w/.built
build/unix_lab/.built build/pico_w/.built: $(FW_SRC) host_tools/mptcp_tools/build.py
	$(PY) -m mptcp_tools.build --board $(patsubst build/%/.built,%,$@)
	@touch $@

test: setup
	$(MAKE) test-unit test-mpy test-wasm typecheck test-host test-interop

# Unit suite under CPython (pytest) ...
test-unit: setup
	$(PY) -m pytest -q tests/unit
# ... and under MicroPython: from source, and from the compiled lab bundle (an 8 MB heap: the
# suite makes many 64 KiB rings; the device's own heap limits are measured by perf --heap).
test-mpy: setup
	MICROPYPATH=firmware:tests $(MPY) -X heapsize=8M tests/mpy_run.py tests/unit
	MICROPYPATH=build/unix_lab:tests $(MPY) -X heapsize=8M tests/mpy_run.py tests/unit
# ... and under the 32-bit MicroPython (WebAssembly, node): from source and from the lab
# bundle (its bytecode .mpy load there; its x64 viper modules do not: pure-Python loops).
# Both runs always happen; the target fails if either had a failing test.
test-wasm: setup
	@rc=0; \
	$(NODE) tests/wasm_run.mjs tests/unit || rc=1; \
	$(NODE) tests/wasm_run.mjs --bundle build/unix_lab tests/unit || rc=1; \
	exit $$rc
# Bytes allocated per data segment on the 32-bit port (coreprof's JSON: alloc_bytes_per_segment
# and per phase); ARGS="--csum" for DSS checksums on. Its timings are coarse there (ticks_us).
coreprof-wasm: setup
	$(NODE) tests/wasm_run.mjs --script firmware/mptcp_apps/coreprof.py -- --size 2M $(ARGS)
test-host: setup
	$(PY) -m pytest -q tests/host
test-interop: setup
	$(PY) -m pytest -q tests/interop

# Mutation testing of the core against the unit suite (not part of `make test`: minutes).
# MUTANTS_SAMPLE=0 runs every mutant (a long run); results/mutants.json.
MUTANTS_FILES  ?= tcp.py,subflow.py,connection.py,stack.py,cc.py,assembler.py,ringbuf.py
MUTANTS_SAMPLE ?= 60
MUTANTS_SEED   ?= 1
MUTANTS_JOBS   ?= 2
mutants: setup
	$(PY) -m mptcp_tools.mutants --files $(MUTANTS_FILES) --sample $(MUTANTS_SAMPLE) \
	  --seed $(MUTANTS_SEED) -j $(MUTANTS_JOBS) $(MUTANTS_ARGS)

# A virtual board flashed with mptcp-flash runs trials/handover_wifi_lte.json in the lab, with
# the kernel as the device beside it (`python -m mptcp_tools.demo --bulk`: the older demo).
demo: setup
	$(PY) -m mptcp_tools.demo

bench: setup
	$(PY) -m mptcp_tools.bench

# Only what flashing needs (the venv; the bundle is rebuilt by mptcp-flash when stale).
flash: $(STAMP)/venv
	$(PY) -m mptcp_tools.flash $(if $(BOARD),--board $(BOARD),) $(if $(PORT),--port $(PORT),)

lab-down:
	-$(VENV)/bin/mptcp-lab down

clean:
	rm -rf build results $(STAMP) $(TYPECHECK)
