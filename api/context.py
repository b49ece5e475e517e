"""Access to the app's services from inside a request."""

from flask import current_app


def services():
    return current_app.extensions["textgen"]
