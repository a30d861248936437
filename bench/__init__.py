"""Benchmarks run by hand against a disposable PostgreSQL database; see bench/README.md."""
