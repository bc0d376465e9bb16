"""Where lxclab keeps its state: everything lives under `$LXCLAB_HOME` (default ~/.lxclab)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The root of lxclab's state: `$LXCLAB_HOME`, else ~/.lxclab."""
    return Path(os.environ.get("LXCLAB_HOME") or Path.home() / ".lxclab")


def store_dir() -> Path:
    """The content-addressed store of blobs and image records."""
    return home() / "store"


def classroom_dir() -> Path:
    """The classroom registry's state: keys, configs, logs, PIDs and the registry's data."""
    return Path(os.environ.get("LXCLAB_CLASSROOM_DIR") or home() / "classroom")


def layers_dir() -> Path:
    """Unpacked layers, one directory per ChainID, shared by every image that has them."""
    return home() / "layers"


def containers_dir() -> Path:
    """One directory per container: its state record, upper dir, logs."""
    return home() / "containers"


def credentials_file() -> Path:
    """Saved registry credentials written by `lxclab login` (mode 0600)."""
    return home() / "credentials.json"
