"""The names the build track's exercises use, imported by every level file a learner saves."""

from __future__ import annotations

import ctypes  # noqa: F401
import hashlib  # noqa: F401
import json  # noqa: F401
import os  # noqa: F401
import re  # noqa: F401
import shutil  # noqa: F401
import tempfile  # noqa: F401
from pathlib import Path  # noqa: F401

import httpx  # noqa: F401

from .. import _linux, cgroups  # noqa: F401
from ..layers import read_entries  # noqa: F401
from ..manifest import ACCEPT  # noqa: F401
from .capabilities import (CAP_LAST_CAP, CAPABILITIES, DOCKER_DEFAULT, LINUX_CAPABILITY_VERSION_3,  # noqa: F401
                           PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_CAPBSET_DROP, CapData, CapHeader)
from .layer_tools import extract_files, safe_path  # noqa: F401
from .levels import load_level  # noqa: F401

__all__ = ["ACCEPT", "CAPABILITIES", "CAP_LAST_CAP", "DOCKER_DEFAULT", "LINUX_CAPABILITY_VERSION_3",
           "PR_CAPBSET_DROP", "PR_CAP_AMBIENT", "PR_CAP_AMBIENT_CLEAR_ALL", "CapData", "CapHeader", "Path", "_linux", "cgroups", "ctypes", "extract_files", "hashlib", "httpx", "json", "load_level", "os", "re",
           "read_entries", "safe_path", "shutil", "tempfile"]
