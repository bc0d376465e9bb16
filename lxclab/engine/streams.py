"""A container's stdin, stdout and stderr: straight into its log file, or through pipes copied to the log and echoed.

A detached container writes its log directly. In the foreground its output goes through
pipes that this process reads as it comes, writing each chunk to the log and to the
terminal (like `docker run` attached). The pipes end when the last process holding them
ends: PID 1's exit kills everything in its PID namespace, so that is when it exits.
"""

from __future__ import annotations

import os
import selectors
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 16


class Streams:
    """The three descriptors to give a container, and the copying of its output; a context manager."""

    def __init__(self, log_path: Path, stdin: int | None, stdout: BinaryIO | None, stderr: BinaryIO | None):
        self.log = open(log_path, "ab", buffering=0)
        self._null = os.open(os.devnull, os.O_RDONLY) if stdin is None else None
        self.echoes: list[tuple[int, BinaryIO]] = []  # (read end of a pipe, where to copy it too)
        self.echoing = stdout is not None or stderr is not None
        self._child_ends: list[int] = []
        outputs = []
        for echo in (stdout, stderr):
            if echo is None:
                outputs.append(self.log.fileno())
                continue
            read_end, write_end = os.pipe()
            self.echoes.append((read_end, echo))
            self._child_ends.append(write_end)
            outputs.append(write_end)
        self.fds = (self._null if stdin is None else stdin, outputs[0], outputs[1])

    def started(self) -> None:
        """Close this process's copies of the container's ends once it has them (else the pipes never end)."""
        for fd in self._child_ends + ([self._null] if self._null is not None else []):
            os.close(fd)
        self._child_ends, self._null = [], None

    def pump(self) -> None:
        """Copy the pipes to the log and their echoes until every writer has closed them."""
        with selectors.DefaultSelector() as selector:
            for read_end, echo in self.echoes:
                selector.register(read_end, selectors.EVENT_READ, echo)
            while selector.get_map():
                for key, _ in selector.select():
                    chunk = os.read(key.fd, CHUNK)
                    if not chunk:
                        selector.unregister(key.fd)
                        continue
                    self.log.write(chunk)
                    key.data.write(chunk)
                    key.data.flush()

    def __enter__(self) -> "Streams":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.started()
        for read_end, _ in self.echoes:
            os.close(read_end)
        self.echoes = []
        self.log.close()
