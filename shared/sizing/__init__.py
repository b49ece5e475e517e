"""The model described once (architecture.py) and what follows from it before a job runs:
the default preset's size for a budget, its memory, storage and generation time."""
