# Two set-up commands for a new user: `make demo` and `make test`. Both create .venv if missing
# and install the project with torch pinned to 2.13.0 (constraints.txt).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LOWBIT_RBP_DATA ?= $(abspath ../shared/data)

.PHONY: install test test-slow demo bench reports clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,dist,search]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

demo: $(STAMP)
	$(VENV)/bin/lowbit-rbp demo --epochs 2

# Every benchmark, each writing its Markdown report (about 10 minutes; run on an idle machine).
bench: $(STAMP)
	$(PY) benchmarks/bench_epoch.py --threads 1,2 --repeats 5 --markdown reports/bench_epoch.md
	$(PY) benchmarks/bench_quantized_epoch.py --threads 1,2 --repeats 3 --markdown reports/bench_quantized_epoch.md
	$(PY) benchmarks/bench_update.py --threads 1,2 --repeats 7 --markdown reports/bench_update.md
	$(PY) benchmarks/bench_cifar.py --threads 2 --steps 4 --repeats 3 --markdown reports/bench_cifar.md

# The MNIST foundation table (20 epochs, seeds 0-2): about 10 minutes on 2 cores.
reports: $(STAMP)
	$(VENV)/bin/lowbit-rbp reproduce foundation --epochs 20 --seeds 0,1,2 --workers 2 --store reports/sweeps/mnist.db --out reports
	$(PY) -m lowbit_rbp.report.table1 --store reports/sweeps/mnist.db --out reports/mnist_table1.md
	$(VENV)/bin/lowbit-rbp report --store reports/sweeps/mnist.db --out reports/sweeps
	$(VENV)/bin/lowbit-rbp reproduce cifar10 --seeds 0,1,2 --out reports
	$(VENV)/bin/lowbit-rbp cost --sweep lowbit_rbp/sweeps/cost_mnist.toml --out reports

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
