"""The Python client for the HTTP API, the local stack runner and the `textgen` command line.

Talks to the service over HTTP only: importing the client (or running any command but
`up`, `demo` and `token create`) loads nothing of api/, worker/ or shared/.
"""

from client.api_client import Client
from client.errors import ApiError, ClientError, ConnectionFailedError, WaitTimeoutError
from client.records import Corpus, Event, Job, JobStatus, Model, Page

__all__ = ["ApiError", "Client", "ClientError", "ConnectionFailedError", "Corpus", "Event",
           "Job", "JobStatus", "Model", "Page", "WaitTimeoutError"]
