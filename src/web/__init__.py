"""HTTP entry points (FastAPI): they store and enqueue, or call pipelines; no rules here."""
