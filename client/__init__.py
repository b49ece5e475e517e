"""The Python client for the HTTP API and the `textgen` command line.

Talks to the service over HTTP only, with its own small types (records.py): it imports
nothing of api/, worker/ or shared/, and installs alone (`pip install .`). The commands
that run the server's code (`up`, `demo`, `token ...`) live with it, in shared/stack/.
"""

from client.api_client import Client
from client.errors import ApiError, ClientError, ConnectionFailedError, WaitTimeoutError
from client.records import Corpus, Event, Job, JobStatus, Model, Page, StoppedReason

__all__ = ["ApiError", "Client", "ClientError", "ConnectionFailedError", "Corpus", "Event",
           "Job", "JobStatus", "Model", "Page", "StoppedReason", "WaitTimeoutError"]
