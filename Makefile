# Athena — the two commands: `make serve` and `make test`.
# Both bring up throwaway PostgreSQL, Redis and S3 (scripts/dev-services) unless
# DATABASE_URL / REDIS_URL / S3_ENDPOINT are given.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

SERVICES := scripts/dev-services
# Sources the service environment (starting services when needed).
WITH_SERVICES := services_env="$$($(SERVICES) up)" && eval "$$services_env" &&

.PHONY: help serve test test-unit spec-check conformance bench services-up services-down fmt clippy build

help:
	@echo "make serve          start local services and serve on 127.0.0.1:$${PORT:-4052}"
	@echo "make test           start local services; unit, integration, spec and conformance checks"
	@echo "make bench          gateway vs pgbench benchmark (wrk)"
	@echo "make services-down  stop the local services and delete their data"

build:
	cargo build --workspace

serve:
	@$(WITH_SERVICES) scripts/serve-local

test: spec-check
	@$(WITH_SERVICES) cargo test --workspace
	@# 1 GiB through PUT upload and proxy at flat RSS: alone in its process.
	@$(WITH_SERVICES) cargo test --test it flat_rss -- --ignored --test-threads=1
	@$(WITH_SERVICES) scripts/conformance-run

test-unit:
	cargo test --workspace --lib --bins

# openapi/openapi.yaml must stay a valid OpenAPI 3.0 document.
spec-check:
	@scripts/spec-check openapi/openapi.yaml

conformance:
	@$(WITH_SERVICES) scripts/conformance-run

bench:
	@$(SERVICES) install-bench-tools
	@$(WITH_SERVICES) scripts/bench

services-up:
	@$(SERVICES) up

services-down:
	@$(SERVICES) down

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings
