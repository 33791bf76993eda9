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
	$(PY) benchmarks/bench_channel_kernels.py --threads 1 --markdown reports/bench_channel_kernels.md
	$(PY) benchmarks/bench_bit_true_epoch.py --threads 1 --repeats 5 --markdown reports/bench_bit_true_epoch.md
	$(PY) benchmarks/bench_diagnostics.py --threads 1 --repeats 3 --markdown reports/bench_diagnostics.md

# Every generated report from its store (finished runs are reused; a missing one is trained: the
# foundation table alone is about 10 minutes on 2 cores, the whole set hours). Run from a clean,
# committed tree: the reports record the code version.
reports: $(STAMP)
	$(VENV)/bin/lowbit-rbp reproduce foundation --epochs 20 --seeds 0,1,2 --workers 2 --store reports/sweeps/mnist.db --out reports
	$(PY) -m lowbit_rbp.report.table1 --store reports/sweeps/mnist.db --out reports/mnist_table1.md
	$(VENV)/bin/lowbit-rbp report --store reports/sweeps/mnist.db --out reports/sweeps
	$(VENV)/bin/lowbit-rbp reproduce cifar10 --seeds 0,1,2 --out reports
	$(VENV)/bin/lowbit-rbp cost --sweep lowbit_rbp/sweeps/cost_mnist.toml --out reports
	$(VENV)/bin/lowbit-rbp budget mnist --out reports/hw_budget_mnist.md
	$(VENV)/bin/lowbit-rbp budget validation --out reports/hw_validation.md
	$(VENV)/bin/lowbit-rbp sweep lowbit_rbp/sweeps/bit_true.toml --store reports/sweeps/bit_true.db --workers 2
	$(VENV)/bin/lowbit-rbp report --bit-true --store reports/sweeps/bit_true.db --out reports
	$(VENV)/bin/lowbit-rbp search lowbit_rbp/sweeps/search_srbp_formats.toml --report reports/search_vs_grid.md \
	    --store reports/sweeps/srbp_formats_search.db --grid-store reports/sweeps/srbp_formats_grid.db \
	    --other-search reports/sweeps/srbp_formats_search_tpe1.db --other-search reports/sweeps/srbp_formats_search_random.db
	$(PY) -m lowbit_rbp.report.semantics --store reports/sweeps/quant.db --out reports/quantization_semantics.md
	$(PY) -m lowbit_rbp.report.alignment --store reports/sweeps/alignment.db --out reports/alignment.md \
	    --quotes reports/sweeps/quant.db --compare reports/sweeps/alignment_control.db --compare reports/sweeps/mnist.db
	$(PY) tools/reliability_report.py --out reports/reliability.md

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
