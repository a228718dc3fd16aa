bench:
	bash scripts/bench.sh

test:
	bash scripts/test.sh

# Fault injection and soak (long): concurrency, kill -9 of every component, full disk, limits.
soak:
	bash scripts/setup.sh && python3 scripts/soak.py

demo:
	bash scripts/demo.sh

.PHONY: bench test demo soak
