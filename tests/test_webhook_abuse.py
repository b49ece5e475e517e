"""Hostile webhook receivers against the real workers (the `stack` fixture, which lists only
127.0.0.1 in TEXTGEN_WEBHOOK_ALLOW_HOSTS): a receiver streaming an endless body, one that
never answers, and one reached by a name that resolves to 127.0.0.1. The workers' memory
stays flat, a training job runs to its end, and another owner's delivery arrives on time.
"""

import time
from pathlib import Path

from client.api_client import Client
from shared.runtime.services import Services
from shared.runtime.settings import Settings
from tests.conftest import TEST_REDIS_URL, TOKENS
from tests.test_end_to_end import TEXT, TINY_DEFAULT
from tests.webhook_receiver import HostileReceiver, Receiver, queue_delivery

ON_TIME_S = 2.0  # a delivery is looked for every 0.5 s and sent in milliseconds


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def wait_for(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_hostile_receivers_hurt_no_job_no_worker_and_no_other_owner(stack, tmp_path):
    svc = Services.from_settings(Settings(
        redis_url=TEST_REDIS_URL, data_dir=stack.data_dir,
        redis_prefix=stack.extra_env["TEXTGEN_REDIS_PREFIX"]))
    api = Client(stack.url, token=TOKENS["alice"])
    endless, silent = HostileReceiver("endless"), HostileReceiver("silent")
    trap = HostileReceiver("silent")  # only ever named as localhost: must never be reached
    trap_url = f"https://localhost:{trap.port}/hook"
    good = Receiver()
    workers = {name: stack.processes[name].pid for name in ("worker-train", "worker-generate")}
    try:
        path = tmp_path / "night.txt"
        path.write_text(TEXT, encoding="utf-8")
        job = api.train(api.upload_corpus(path)["id"], "default", **TINY_DEFAULT,
                        webhook=endless.url, webhook_events=["epoch_end", "completed"])
        # Alice's receivers, each hostile, with more deliveries than her slots.
        for n in range(4):
            for url in (endless.url, silent.url, trap_url):
                queue_delivery(svc.webhooks, "alice", url, n)
        # A URL with a password, stored before the API refused them: refused, never logged.
        queue_delivery(svc.webhooks, "dave", f"http://me:hunter22@127.0.0.1:{trap.port}/", 1)
        wait_for(lambda: len(endless.bytes_sent) >= 2 and silent.connections >= 2, 10,
                 "the workers never cut an endless body, or never reached the silent one")

        queued = time.monotonic()
        queue_delivery(svc.webhooks, "bob", good.url, 1)
        wait_for(good.acknowledged, ON_TIME_S, "bob's delivery was held up by alice's")
        delay_s = time.monotonic() - queued

        job = api.wait(job["id"], poll_s=0.2, timeout_s=180)
        assert job["status"] == "succeeded", job["error"]

        # Memory, from here (the training is done: its own memory is in the baseline). A
        # third owner's endless replies: alice's slots are held by the silent receiver.
        before_mb = {name: rss_mb(pid) for name, pid in workers.items()}
        cut = len(endless.bytes_sent)
        for n in range(8):
            queue_delivery(svc.webhooks, "carol", endless.url, n)
        wait_for(lambda: len(endless.bytes_sent) >= cut + 8, 20, "no more endless bodies cut")
        grown_mb = {name: rss_mb(pid) - before_mb[name] for name, pid in workers.items()}
        # A reader with no cap takes ~30 MB a second from this receiver; we read 64 KiB a
        # reply (what the receiver managed to send includes the kernel's socket buffers).
        assert max(grown_mb.values()) < 20, f"the workers grew by {grown_mb} MB"
        assert max(endless.bytes_sent) < 16 * 1024 * 1024, endless.bytes_sent

        def logs():
            return "".join((stack.log_dir / f"{name}.log").read_text(errors="replace")
                           for name in ("worker-train", "worker-generate"))
        for refused in (f"to localhost:{trap.port}: localhost resolves to 127.0.0.1",
                        f"to 127.0.0.1:{trap.port}: 'webhook' may not carry a user name"):
            wait_for(lambda line=refused: line in logs(), 5, f"no log line says {refused!r}")
        assert "hunter22" not in logs() and trap.connections == 0
        print(f"bob's delivery after {delay_s:.2f} s; the workers grew by {grown_mb} MB "
              f"while {len(endless.bytes_sent)} endless replies were cut, at most "
              f"{max(endless.bytes_sent)} bytes sent to one")
    finally:
        for receiving in (endless, silent, trap, good):
            receiving.close()
