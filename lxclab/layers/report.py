"""The summary of one applied layer: what it added, what it deleted, what it had to skip."""

from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field


class LayerWarning(UserWarning):
    """Something of a layer was not kept (a device node without privileges, an unsupported xattr)."""


@dataclass
class ApplyReport:
    """What applying one layer did: counts by kind, bytes written, whiteouts, skipped entries, warnings."""

    name: str
    diff_id: str = ""
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    devices: int = 0
    fifos: int = 0
    bytes: int = 0
    whiteouts: list[str] = field(default_factory=list)
    opaques: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def entries(self) -> int:
        """How many entries were written (markers not counted)."""
        return self.files + self.directories + self.symlinks + self.hardlinks + self.devices + self.fifos

    def emit_warnings(self) -> None:
        """Issue each collected warning once, as a LayerWarning naming this layer."""
        for message in self.warnings:
            _warnings.warn(f"layer {self.name}: {message}", LayerWarning, stacklevel=3)

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.files} files ({self.bytes} bytes), {self.directories} dirs, "
            f"{self.symlinks} symlinks, {self.hardlinks} hardlinks, {self.devices + self.fifos} special; "
            f"{len(self.whiteouts)} whiteouts, {len(self.opaques)} opaque dirs, {len(self.skipped)} skipped"
        )
