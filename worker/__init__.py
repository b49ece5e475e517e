"""Celery worker and the ML pipeline; the only place TensorFlow lives."""
