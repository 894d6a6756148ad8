"""Celery app and job tasks: thin adapters from a job row to library code, reporting progress into the row."""
