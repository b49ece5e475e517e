"""Plumbing each entry point wires up once: settings from the environment, the services
built from them, Redis and its key names, the Celery app and queues, logs, metrics, the
clock and ids, atomic local writes."""
