# The two commands of the README. Both set everything up on a fresh machine.
VENV ?= .venv
PORT ?= 8501

.PHONY: app test test-all bench

app:            ## install what the dashboard needs and run it on the shipped assets
	bash scripts/setup.sh app
	$(VENV)/bin/python -m streamlit run app.py --server.port=$(PORT)

test:           ## install everything the tests need (incl. chromium via apt) and run the suite (CI runs this)
	bash scripts/setup.sh test
	$(VENV)/bin/python -m pytest -m "not slow" -q -ra --durations=15 --timeout=600 --ignore=tests/test_why_page.py
	$(VENV)/bin/python -m pytest -m "not slow" -q -ra --timeout=600 tests/test_why_page.py  # own process: see README, Tests

test-all:       ## the suite including the slow (full-size) training/embedding runs
	bash scripts/setup.sh test
	$(VENV)/bin/python -m pytest -q -ra

bench:          ## print the speed figures of every benchmark (bench/peer_*.py are the apps bench/app.py measures against)
	for f in bench/*.py; do case $$f in bench/peer_*) continue;; esac; echo "== $$f"; $(VENV)/bin/python $$f; done
