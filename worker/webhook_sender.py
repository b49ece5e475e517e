"""The webhook sender: in every worker, a thread that sends the queued webhook deliveries
(shared/webhooks.py). Apart from the job's own thread, so a slow receiver never delays
a job; several senders claim different deliveries."""

from worker.periodic import Periodic

POLL_S = 0.5  # how often due deliveries are looked for


def start_webhook_sender(webhooks):
    def send_due():
        for delivery_id in webhooks.claim_due():
            webhooks.send(delivery_id)
    return Periodic("webhooks", POLL_S, send_due).start()
