"""Progress of long transfers: a tiny protocol, and a terminal bar that implements it with tqdm.

The registry client reports each blob it downloads through three calls: `start` (with the
total size, when known), `update` (with the absolute number of bytes done, so a resumed
download starts where its partial file ended), and `finish`. The notebook bar lives in
`lxclab.widgets.progress`; anything with these three methods will do.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:  # tqdm loads with the first bar, so that importing this module costs nothing
    from tqdm import tqdm


class Progress(Protocol):
    """Receives the progress of transfers, each named by a key (a blob's digest)."""

    def start(self, key: str, description: str, total: int | None) -> None:
        """A transfer of `total` bytes (None if unknown) begins."""

    def update(self, key: str, done: int) -> None:
        """`done` bytes of the transfer are now complete (it may go down after a restart)."""

    def finish(self, key: str) -> None:
        """The transfer ended, successfully or not."""


class TerminalProgress:
    """One tqdm bar per transfer, on stderr, like `docker pull` prints."""

    def __init__(self, file: TextIO | None = None):
        self.file = file or sys.stderr
        self._bars: dict[str, tqdm] = {}

    def start(self, key: str, description: str, total: int | None) -> None:
        """Open a bar for this transfer."""
        from tqdm import tqdm

        self._bars[key] = tqdm(
            total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, file=self.file, leave=True
        )

    def update(self, key: str, done: int) -> None:
        """Move the bar to `done` bytes."""
        bar = self._bars.get(key)
        if bar is not None:
            bar.update(done - bar.n)

    def finish(self, key: str) -> None:
        """Close the bar."""
        bar = self._bars.pop(key, None)
        if bar is not None:
            bar.close()


class RecordingProgress:
    """Keeps every call it receives: for tests and lessons that want to look at the events."""

    def __init__(self):
        self.events: list[tuple] = []

    def start(self, key: str, description: str, total: int | None) -> None:
        """Record the start of a transfer."""
        self.events.append(("start", key, total))

    def update(self, key: str, done: int) -> None:
        """Record bytes done."""
        self.events.append(("update", key, done))

    def finish(self, key: str) -> None:
        """Record the end of a transfer."""
        self.events.append(("finish", key))
