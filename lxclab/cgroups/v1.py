"""Cgroup v1: one hierarchy per controller (memory, cpu, cpuacct, pids), so one directory each."""

from __future__ import annotations

from .group import Cgroup


class CgroupV1(Cgroup):
    """A group in the v1 hierarchies: one directory per controller mount; files from vocabulary.STAT_FILES[1]."""

    version = 1
