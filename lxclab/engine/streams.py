"""A container's stdin, stdout and stderr: its log file, pipes this process copies, or a pty of its own.

A detached container writes its log directly. In the foreground its output goes through
pipes that this process reads as it comes, writing each chunk to the log and to the
terminal (like `docker run` attached). The pipes end when the last process holding them
ends: PID 1's exit kills everything in its PID namespace, so that is when it exits.

The caller's terminal never reaches the container: a descriptor of it would let root
inside type into the caller's shell (TIOCSTI) or change its settings. Input goes through
a pipe that this process fills from its own stdin (`-i`); with `tty=True` (`-t`) the
container gets a new pseudo-terminal instead, whose other end this process relays to and
from its own terminal, put in raw mode meanwhile so that keys reach the container as typed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import selectors
import termios
import tty as ttymode
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 16


class Streams:
    """The three descriptors to give a container, and the copying to and from them; a context manager.

    `stdin` is a descriptor whose bytes are copied into the container (None: /dev/null);
    `stdout` and `stderr` are binary streams its output is echoed to as well as logged
    (None: only the log); `tty` gives it one new pty for all three (echoed to `stdout`).
    With `log_path` None (exec) output is only echoed.
    """

    def __init__(self, log_path: Path | None, stdin: int | None = None, stdout: BinaryIO | None = None,
                 stderr: BinaryIO | None = None, tty: bool = False):
        self.log = open(log_path, "ab", buffering=0) if log_path is not None else None
        self.source = stdin
        self.tty = tty
        self.echoing = stdout is not None or stderr is not None
        self._outputs: dict[int, BinaryIO | None] = {}  # read end -> where to echo it (besides the log)
        self._child_ends: list[int] = []
        self._input: int | None = None  # where this process writes what it reads from `source`
        self._saved_mode: list = []
        self.fds = self._pty(stdout) if tty else self._pipes(stdout, stderr)

    def _pipes(self, stdout: BinaryIO | None, stderr: BinaryIO | None) -> tuple[int, int, int]:
        """Pipes for input (or /dev/null) and for each echoed output; the log itself for the others."""
        if self.source is None:
            stdin = self._child_end(os.open(os.devnull, os.O_RDONLY))
        else:
            stdin, self._input = os.pipe()
            self._child_end(stdin)
        outputs = []
        for echo in (stdout, stderr):
            if echo is None and self.log is not None:
                outputs.append(self.log.fileno())
                continue
            read_end, write_end = os.pipe()
            self._outputs[read_end] = echo
            outputs.append(self._child_end(write_end))
        return stdin, outputs[0], outputs[1]

    def _pty(self, stdout: BinaryIO | None) -> tuple[int, int, int]:
        """A new pty: its terminal end is the container's 0, 1 and 2; this process keeps the other end."""
        master, terminal = os.openpty()
        self._outputs[master] = stdout
        self._input = master if self.source is not None else None
        if self.source is not None and os.isatty(self.source):
            size = fcntl.ioctl(self.source, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)
        self._child_end(terminal)
        return terminal, terminal, terminal

    def _child_end(self, fd: int) -> int:
        """Remember `fd` as one the container gets (closed here once it has it); returns it."""
        self._child_ends.append(fd)
        return fd

    def started(self) -> None:
        """Close this process's copies of the container's ends once it has them (else the pipes never end)."""
        for fd in self._child_ends:
            os.close(fd)
        self._child_ends = []

    def pump(self) -> None:
        """Copy input in and output out (to the log and the echoes) until the container's output ends."""
        terminal = self._callers_terminal() if self.tty else None
        if terminal is not None:
            self._saved_mode = termios.tcgetattr(terminal)
            ttymode.setraw(terminal, termios.TCSANOW)  # keep what was typed ahead (TCSAFLUSH drops it)
        try:
            self._copy()
        finally:
            if terminal is not None:
                termios.tcsetattr(terminal, termios.TCSADRAIN, self._saved_mode)

    def _callers_terminal(self) -> int | None:
        """The terminal this process reads or echoes to, if any: the container's pty already does its line work."""
        candidates = [self.source] + [_fileno(echo) for echo in self._outputs.values()]
        return next((fd for fd in candidates if fd is not None and os.isatty(fd)), None)

    def _copy(self) -> None:
        pending = b""
        with selectors.PollSelector() as selector:  # poll, unlike epoll, takes a regular file as stdin too
            for read_end in self._outputs:
                selector.register(read_end, selectors.EVENT_READ, "output")
            if self._input is not None:
                selector.register(self.source, selectors.EVENT_READ, "source")
            while any(key.data == "output" for key in selector.get_map().values()):
                for key, events in selector.select():
                    if events & selectors.EVENT_WRITE:
                        pending = self._write_input(selector, pending)
                    if events & selectors.EVENT_READ and key.data == "output":
                        self._copy_output(selector, key.fd)
                    elif events & selectors.EVENT_READ and key.data == "source":
                        pending = self._read_input(selector)

    def _copy_output(self, selector: selectors.BaseSelector, read_end: int) -> None:
        """One chunk from the container to the log and its echo; at its end, stop watching it."""
        chunk = _read(read_end)
        if not chunk:
            if read_end == self._input:
                self._input = None
            selector.unregister(read_end)
            return
        if self.log is not None:
            self.log.write(chunk)
        echo = self._outputs[read_end]
        if echo is not None:
            echo.write(chunk)
            echo.flush()

    def _read_input(self, selector: selectors.BaseSelector) -> bytes:
        """Read what the caller typed or piped; hold it until the container's input can take it."""
        chunk = _read(self.source)
        selector.unregister(self.source)
        if not chunk:
            self._end_input()
            return b""
        if self._input is None:
            return b""
        _watch_writes(selector, self._input)
        return chunk

    def _write_input(self, selector: selectors.BaseSelector, pending: bytes) -> bytes:
        """Write as much of `pending` as the container's input takes; read the caller again once it is all in."""
        try:
            pending = pending[os.write(self._input, pending):]
        except OSError:  # the container closed its input
            pending = b""
        if not pending:
            _stop_writes(selector, self._input)
            selector.register(self.source, selectors.EVENT_READ, "source")
        return pending

    def _end_input(self) -> None:
        """The caller's input ended: close the container's stdin pipe (a pty stays open for its output)."""
        if self._input is not None and not self.tty:
            os.close(self._input)
            self._input = None

    def __enter__(self) -> "Streams":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.started()
        self._end_input()
        for read_end in self._outputs:
            os.close(read_end)
        self._outputs = {}
        if self.log is not None:
            self.log.close()


def _fileno(stream: BinaryIO | None) -> int | None:
    """The descriptor under a stream, or None (no stream, or one with no descriptor)."""
    try:
        return stream.fileno() if stream is not None else None
    except (OSError, ValueError, AttributeError):
        return None


def _read(fd: int) -> bytes:
    """A chunk from `fd`; b"" at its end (a pty's other end reports EIO once the last holder closed it)."""
    try:
        return os.read(fd, CHUNK)
    except OSError as error:
        if error.errno == errno.EIO:
            return b""
        raise


def _watch_writes(selector: selectors.BaseSelector, fd: int) -> None:
    """Also wake up when `fd` can be written (a pty's end is watched for reading already)."""
    try:
        key = selector.get_key(fd)
        selector.modify(fd, key.events | selectors.EVENT_WRITE, key.data)
    except KeyError:
        selector.register(fd, selectors.EVENT_WRITE, "input")


def _stop_writes(selector: selectors.BaseSelector, fd: int) -> None:
    """Stop waking up for writes to `fd`."""
    key = selector.get_key(fd)
    if key.events == selectors.EVENT_WRITE:
        selector.unregister(fd)
    else:
        selector.modify(fd, selectors.EVENT_READ, key.data)
