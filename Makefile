# dita's two entry points: `make demo` runs the demo kernel, `make test` runs
# every check CI runs. Both set up what they need on a fresh machine
# (a virtualenv with dita built in release mode, test tools).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CARGO_MANIFEST := native/Cargo.toml

.PHONY: setup demo test test-rust test-python lint bench bench-rust fuzz-long hazelcast-image clean

$(VENV)/.installed: pyproject.toml native/Cargo.toml $(wildcard native/*/Cargo.toml) $(wildcard native/*/src/*.rs)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/dita run $(ARGS)

test: setup test-rust lint test-python

test-rust:
	# The binding is a Python extension (no libpython to link a test binary against): its
	# behaviour is tested from Python; the kernel and store crates hold the Rust tests.
	# The property tests draw their inputs from a fixed seed here, so that a run is
	# repeatable (set PROPTEST_RNG_SEED to explore others; make fuzz-long searches at length).
	PROPTEST_RNG_SEED=$${PROPTEST_RNG_SEED:-20261204} \
		cargo test --manifest-path $(CARGO_MANIFEST) -p dita-kernel -p dita-store --quiet
	cargo clippy --manifest-path $(CARGO_MANIFEST) --all-targets --quiet -- -D warnings

lint: setup
	$(VENV)/bin/ruff check dita tests
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest dita._native

test-python: setup
	$(PY) -m pytest -q

bench: setup
	$(VENV)/bin/dita bench $(ARGS)

bench-rust:
	cargo bench --manifest-path $(CARGO_MANIFEST) -p dita-kernel --bench kernel --bench steps

# The long fuzz runs, each bounded by FUZZ_MINUTES (default 10) and each printing
# how many operations it made: libFuzzer over arbitrary operation sequences on the
# Rust kernel (nightly toolchain and cargo-fuzz; no sanitizer: the kernel has no
# unsafe code, and ASan cuts the operations to a third), then hypothesis feeding the
# Python boundary malformed objects; then the control fuzzer (a raw client writing
# hostile values into dita's maps against kernels on a member it starts, printing
# its writes per second); then planted documents against resume; then the kernel-vs-model
# properties at length.
fuzz-long: setup
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	mkdir -p native/fuzz/corpus/kernel_ops
	cd native/fuzz && cargo +nightly fuzz run -s none kernel_ops corpus/kernel_ops -- \
		-max_total_time=$$(( $${FUZZ_MINUTES:-10} * 60 )) -max_len=8192 -len_control=20
	$(PY) -m tests.fuzz.boundary --minutes $${FUZZ_MINUTES:-10}
	$(PY) -m tests.fuzz.control --minutes $${FUZZ_MINUTES:-10}
	DITA_RESUME_FUZZ_EXAMPLES=$$(( $${FUZZ_MINUTES:-10} * 5000 )) $(PY) -m pytest -q tests/fuzz/test_resume_fuzz.py
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q tests/property

# The local Docker image dita/hazelcast:<version> (a debootstrapped Debian with Java 17 and the
# Hazelcast jars) for the tests' testcontainers backend; skips what is built already.
hazelcast-image:
	ops/build-hazelcast-image

clean:
	rm -rf $(VENV) native/target
