"""Access to the app's services from inside a request."""

from flask import current_app


def services():
    return current_app.extensions["textgen"]


def event_hub():
    """This process's reader of event streams (api/event_hub.py)."""
    return current_app.extensions["textgen.event_hub"]


def stream_slots():
    return current_app.extensions["textgen.stream_slots"]


def download_slots():
    """This process's download slots (api/download_slots.py)."""
    return current_app.extensions["textgen.download_slots"]
