"""Fault tests: break a worker, Redis, PostgreSQL or the provider mid-run; nothing is lost."""
