# Two commands do all the set-up on a fresh machine (Python 3.11):
#   make demo   - pretrained models on embedded images, offline: PNG + metrics
#   make test   - the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test data verify results tasks classifiers clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	AEZOO_OFFLINE=1 $(BIN)/aezoo demo --output aezoo_demo.png

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q tests

# Fashion-MNIST (60,000 + 10,000 images) from Debian, for training and full evaluation.
data:
	@test -d /usr/share/datasets/fashion-mnist || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist; fi; }

verify: $(STAMP)
	$(BIN)/aezoo verify

results: $(STAMP)
	$(BIN)/aezoo results --update README.md

# The task benchmarks of README "Tasks" over every published entry (pretrained/tasks/*.json), then the tables.
TASKS ?= denoise features compress generate embed
tasks: $(STAMP)
	for t in $(TASKS); do $(BIN)/aezoo bench $$t || exit 1; done
	$(BIN)/aezoo results --update README.md

# Retrain the generation task's feature classifiers (bundled in pretrained/tasks/ with their sha256).
classifiers: $(STAMP)
	$(BIN)/python -m aezoo.tasks.generate train-classifier fashion_mnist
	$(BIN)/python -m aezoo.tasks.generate train-classifier mnist_5k

clean:
	rm -rf $(VENV) runs aezoo_demo.png
