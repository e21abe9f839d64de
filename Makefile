# Everyday commands. `make help` lists them; every target uses the project venv.
PY ?= .venv/bin/python
BIN := $(dir $(PY))

.PHONY: help demo test test-tui lint snapshots snapshots-update screenshots bench

help:  ## list the targets
	@grep -E "^[a-z-]+:.*## " $(MAKEFILE_LIST) | sed "s/:.*## /\t/"

demo:  ## the dashboard on an embedded GitHub emulator with stand-in agents
	$(BIN)clambake-tui --demo

test:  ## the whole suite, as CI runs it
	$(BIN)pytest

test-tui:  ## the dashboard tests only (engine, keys, snapshots, --once, end to end)
	$(BIN)pytest tests/test_tui_keys.py tests/test_tui_snapshots.py tests/test_tui_e2e.py tests/test_headless.py tests/test_engine.py

lint:  ## ruff, formatting, strict mypy and the import contracts
	$(BIN)ruff check .
	$(BIN)ruff format --check .
	$(BIN)mypy clambake_tui
	$(BIN)lint-imports

snapshots:  ## compare the dashboard with tests/__snapshots__/ (report: snapshot_report.html)
	$(BIN)pytest tests/test_tui_snapshots.py

snapshots-update:  ## rewrite the snapshots: only after looking at the report
	$(BIN)pytest tests/test_tui_snapshots.py --snapshot-update

screenshots:  ## SVG screenshots of the real app in demo mode into screenshots/
	$(PY) scripts/screenshots.py --out screenshots

bench:  ## the dashboard under a 10 x 5,000 lines/s flood, and --once timing
	$(PY) bench/bench_dashboard.py
