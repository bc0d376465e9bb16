"""The states liblxc reports for a container (lxc_container::state)."""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    """State is one of the states liblxc reports for a container."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    ABORTING = "ABORTING"
    FREEZING = "FREEZING"
    FROZEN = "FROZEN"
    THAWED = "THAWED"
