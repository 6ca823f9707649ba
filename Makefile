# The README's two commands. Each runs tools/setup.sh first, which creates .venv and installs
# what is missing (a second run takes seconds).
PRESET ?= quick
OUT ?= results

.PHONY: setup reproduce test export clean-nbs

setup:
	bash tools/setup.sh

reproduce: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 .venv/bin/edulit reproduce --preset $(PRESET) --out $(OUT)

test:
	bash tools/test.sh

export: setup
	.venv/bin/nbdev-export && .venv/bin/nbdev-clean && .venv/bin/python tools/readme.py
