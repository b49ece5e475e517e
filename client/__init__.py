"""The Python client for the HTTP API, the local stack runner and the `textgen` command line.

Talks to the service over HTTP only; imports neither api/ nor worker/.
"""
