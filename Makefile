# The two commands a newcomer needs: `make demo` (Python 3.11; Java 17 for Spark, else the demo runs on DuckDB)
# and `make test` (Python 3.11 and Java 17). Nothing else: the metadata DB is this checkout's embedded PostgreSQL.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format install java spark-classes airflow bench emr-bundle clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[airflow,spark,dev]"
	@touch $(STAMP)

# the venv, and the JVM class-data archive local Spark starts from (2-3 s per start; a no-op once written, skipped
# without Java)
install: $(STAMP)
	@if command -v java >/dev/null 2>&1 || test -x "$$JAVA_HOME/bin/java"; then $(BIN)/python -m churn.dev.spark_classes; fi

java:
	@command -v java >/dev/null 2>&1 || { echo "Java 17 is required for Spark and was not found on PATH (install openjdk-17-jre-headless)."; exit 1; }

spark-classes: install

demo: install
	$(BIN)/churn demo

test: java install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

airflow: install
	$(BIN)/churn airflow serve

bench: java install
	$(BIN)/python bench/bench_features.py --instances-per-day 1000
	$(BIN)/python bench/bench_features.py --instances-per-day 10000
	$(BIN)/python bench/bench_features.py --instances-per-day 50000 --rebuild-days 14
	$(BIN)/python bench/bench_monitoring.py --instances-per-day 300 --window 90
	$(BIN)/python bench/bench_reliability.py --kills 52
	$(BIN)/python bench/bench_alerts.py --days 2000 --changes 300
	$(BIN)/python bench/bench_base_rate.py
	$(BIN)/python bench/bench_outreach.py --seeds 5
	test -d warehouse/predictions && $(BIN)/python bench/bench_drift.py || echo "bench_drift.py skipped: run make demo first"

# The EMR Serverless job's packed environment and entry point, in dist/emr/ (see docs/operations.md).
emr-bundle: install
	$(BIN)/python -m churn.ops.emr_bundle --out dist/emr

clean:
	@$(BIN)/churn airflow stop 2>/dev/null || true
	rm -rf warehouse .airflow spark-warehouse metastore_db derby.log
