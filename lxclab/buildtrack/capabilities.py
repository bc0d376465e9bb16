"""What level B7 gives the learner to drop capabilities with: the numbers, Docker's list, capset's structs.

The numbers are linux/capability.h's; the check does not trust this table but asks the
kernel (through util-linux's setpriv) which bits a set of names is.
"""

from __future__ import annotations

import ctypes

from ..security.capabilities import DEFAULT, NUMBERS

# The bit numbers and Docker's default 14 are the security profile's own (one table for the kit).
CAPABILITIES = NUMBERS
DOCKER_DEFAULT = DEFAULT
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_LAST_CAP = "/proc/sys/kernel/cap_last_cap"


class CapHeader(ctypes.Structure):
    """capset(2)'s header: the ABI version and the PID (0 for the caller)."""

    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    """capset(2)'s data for 32 capabilities; version 3 takes two of them (bits 0-31, then 32-63)."""

    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
