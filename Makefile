# Shortcuts; README.md has the two commands a new machine needs.
.PHONY: up test test-pg lint format screenshots

up:
	python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/flask --app wsgi up

test:
	scripts/system-packages && python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest

test-pg:
	DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \
	  .venv/bin/python -m pytest

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

# Retake the page screenshots in docs/screenshots (phone and desktop) from the end-to-end tests.
screenshots:
	ZUIMEI_SCREENSHOT_DIR=docs/screenshots .venv/bin/python -m pytest -q tests/e2e
