"""A command run in a terminal of its own (a pseudo-terminal), as a person runs it: its
stdin, stdout and stderr are the terminal, and Ctrl-C typed there reaches its whole
foreground process group, as a shell's would.

Standard library only (pty, termios): pexpect would do the same for one more dependency.
"""

import fcntl
import os
import pty
import re
import select
import subprocess
import termios
import time


class Terminal:
    def __init__(self, argv, *, env, cwd):
        self.master, slave = pty.openpty()

        def take_terminal():
            # A session of its own whose controlling terminal is the pty: its process
            # group is then the terminal's foreground group, which Ctrl-C signals.
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                        env=env, cwd=cwd, preexec_fn=take_terminal)
        os.close(slave)
        self.output = ""  # everything the terminal showed so far

    def read_until(self, pattern, timeout_s=60):
        """Read until the output matches `pattern` (a regex); return the match."""
        deadline = time.monotonic() + timeout_s
        while not (found := re.search(pattern, self.output)):
            left_s = deadline - time.monotonic()
            assert left_s > 0, f"no {pattern!r} within {timeout_s} s in:\n{self.output}"
            if not self._read(min(left_s, 0.2)) and self.process.poll() is not None:
                raise AssertionError(f"exited ({self.process.returncode}) without "
                                     f"{pattern!r}:\n{self.output}")
        return found

    def _read(self, timeout_s):
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: every process holding the terminal has exited
            return False
        self.output += chunk.decode("utf-8", errors="replace").replace("\r\n", "\n")
        return bool(chunk)

    def type(self, text):
        os.write(self.master, text.encode())

    def ctrl_c(self):
        self.type("\x03")

    def wait(self, timeout_s=30):
        """The exit status, reading the output meanwhile (a full pty would block it)."""
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"still running after {timeout_s} s:\n" \
                                                f"{self.output}"
            self._read(0.1)
        while self._read(0.05):
            pass
        return self.process.returncode

    def close(self, grace_s=20):
        """Stop the command if it still runs (a test that failed midway): SIGTERM first, so
        that one which started processes of its own (`textgen up`) stops them too."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        os.close(self.master)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
