"""Code shared by the API and the workers: settings, errors, specs, stores.

Plain Python only: nothing here imports Flask or TensorFlow.
"""
