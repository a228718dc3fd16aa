bench:
	bash scripts/bench.sh

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

.PHONY: bench test demo
