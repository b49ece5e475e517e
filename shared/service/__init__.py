"""The service layer: what a request must satisfy before it becomes a job, and the steps
across several stores. API views parse and answer HTTP; these do the rest, raising the
errors of contracts/errors.py."""
