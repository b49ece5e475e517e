"""A stand-in for Project Gutenberg on 127.0.0.1: the server fetches from it in tests
(TEXTGEN_GUTENBERG_URL), as it would from the real site where there is a network.

/pg2.txt is too big for the tests' upload limit, /pg3.txt arrives too slowly, /pg999.txt
does not exist; every other number is a small book in Gutenberg's wrapping (CRLF, a BOM).
"""

import http.server
import threading
import time

BOOK = """The Project Gutenberg eBook of Frankenstein
This eBook is for the use of anyone anywhere...

*** START OF THE PROJECT GUTENBERG EBOOK FRANKENSTEIN; OR, THE MODERN PROMETHEUS ***

Letter 1

You will rejoice to hear...

*** END OF THE PROJECT GUTENBERG EBOOK FRANKENSTEIN; OR, THE MODERN PROMETHEUS ***

Section 1. General Terms of Use and Redistributing Project Gutenberg...
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/pg2.txt":
            self._send(b"x" * (200 * 1024))
        elif self.path == "/pg3.txt":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(40):  # a kilobyte every 0.1 s: 4 s for the whole book
                    self.wfile.write(b"x" * 1024)
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server under test hung up: what the test wants
        elif self.path == "/pg999.txt":
            self.send_error(404)
        else:
            self._send(b"\xef\xbb\xbf" + BOOK.replace("\n", "\r\n").encode())

    def _send(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def start():
    """(URL template, server): call server.shutdown() when done."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/pg{{n}}.txt", server
