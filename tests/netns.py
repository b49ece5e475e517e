"""Test hosts with real network separation: Linux network namespaces joined by veth pairs
(`ip netns`, `ip link`; root and iproute2, as CI has), removed again by close().

Each pair is a point-to-point /30 in 198.18.0.0/15, the range set aside for network
benchmarks (RFC 2544): no real host is there, and nothing leaves the namespaces but the one
link kept in the root namespace for the test process itself.
"""

import secrets
import shutil
import subprocess


class NetnsUnavailableError(RuntimeError):
    """Raised when network namespaces cannot be made here (not root, no iproute2)."""


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class Network:
    def __init__(self):
        self.tag = secrets.token_hex(2)  # names of this run's namespaces and interfaces
        self.subnet = secrets.randbelow(256)  # this run's 198.18.<subnet>.0/24
        self.namespaces = []
        self.interfaces = []  # every one made: any left in the root namespace is removed
        self.pairs = 0

    def namespace(self, name):
        """A new network namespace with its loopback up; returns its full name."""
        full = f"tg{self.tag}-{name}"
        if shutil.which("ip") is None:
            raise NetnsUnavailableError("iproute2's `ip` is not installed")
        try:
            ip("netns", "add", full)
        except subprocess.CalledProcessError as e:
            raise NetnsUnavailableError(f"`ip netns add` failed: {e.stderr.strip()}") from e
        self.namespaces.append(full)
        ip("-n", full, "link", "set", "lo", "up")
        return full

    def link(self, a, b):
        """A veth pair between namespaces a and b (None: the root namespace). Returns
        ((a's interface, a's address), (b's interface, b's address))."""
        n = self.pairs
        self.pairs += 1
        ends = []
        for side, namespace in enumerate((a, b)):
            ends.append((f"tg{self.tag}p{n}{'ab'[side]}", namespace,
                         f"198.18.{self.subnet}.{4 * n + 1 + side}"))
        ip("link", "add", ends[0][0], "type", "veth", "peer", "name", ends[1][0])
        self.interfaces += [ends[0][0], ends[1][0]]
        for name, namespace, address in ends:
            prefix = []
            if namespace is not None:
                ip("link", "set", name, "netns", namespace)
                prefix = ["-n", namespace]
            ip(*prefix, "addr", "add", f"{address}/30", "dev", name)
            ip(*prefix, "link", "set", name, "up")
        return (ends[0][0], ends[0][2]), (ends[1][0], ends[1][2])

    def set_link(self, namespace, interface, up):
        """Bring one end of a pair down (the other end's packets are dropped, silently, as
        in a real partition) or up again."""
        ip("-n", namespace, "link", "set", interface, "up" if up else "down")

    @staticmethod
    def exec_in(namespace):
        """The argv prefix that runs a command inside `namespace`."""
        return ["ip", "netns", "exec", namespace]

    def close(self):
        """Remove every namespace (its interfaces, and their peers, go with it) and any
        interface left in the root namespace.
        Processes inside must have been stopped first."""
        for namespace in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        for name in self.interfaces:  # most are gone with their namespace already
            subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
        self.namespaces.clear()
        self.interfaces.clear()
