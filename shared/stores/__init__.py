"""Where things are kept, each store owning its rules: job records and their fenced status
steps (jobs.py), fair turns (scheduler.py), corpus, model and token records, the artifact
store (local disk or S3) and the quotas counted over them."""
