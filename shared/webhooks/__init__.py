"""Webhooks: where one may go (targets.py: checked, resolved, pinned) and the outbox that
queues, signs and delivers them (outbox.py)."""
