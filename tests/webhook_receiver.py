"""A webhook receiver on 127.0.0.1 for the tests: records each delivery, answers with the
statuses it is told to (then 200), and checks nothing itself."""

import http.server
import json
import threading
import time


class Receiver:
    def __init__(self, statuses=(), delay_s=0.0):
        self.deliveries = []  # (headers, body as JSON, the status answered)
        self.statuses = list(statuses)  # answered in turn before 200s
        self.delay_s = delay_s
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay_s)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.deliveries.append((dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def acknowledged(self):
        return [(headers, json.loads(body)) for headers, body, status in self.deliveries
                if 200 <= status < 300]

    def close(self):
        self.server.shutdown()
