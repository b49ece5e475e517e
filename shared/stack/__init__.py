"""The whole server on one machine: the local stack that `make up`, `make demo` and the
end-to-end tests run (runner.py), the demo, and the `textgen` commands that run server code
(commands.py: up, demo, token ...).

The one part of shared/ that imports client/ (the demo drives the stack through the
client; the commands share its command line). The client never imports it: client/cli.py
loads commands.py by name, where a checkout has it.
"""
