"""The security profile both runtimes apply, read back from inside real containers.

What a container's root holds (capability sets, no_new_privs, seccomp mode, its session),
what its /proc, /sys and /dev look like, and that the options lift exactly what they say.
The seccomp filter itself is checked instruction by instruction against the kernel.
"""

from __future__ import annotations

import errno
import os

import pytest
from cli_process import lxclab
from fixture_engine import busybox, engine_home  # noqa: F401

from lxclab.chroot import in_child
from lxclab.engine import run as engine
from lxclab.errors import InvalidValue
from lxclab.security import MASKED_PATHS, READONLY_PATHS, Profile, capabilities, seccomp
from lxclab.security.lockdown import held, restrict

RUNTIMES = ["namespaces", "lxc"]
STATUS = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status"


def status_fields(output: str) -> dict[str, str]:
    """The fields of /proc/self/status that STATUS printed."""
    return dict(line.split(":\t") for line in output.strip().splitlines())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_root_keeps_dockers_14_capabilities_no_new_privs_and_a_filter(busybox, runtime):
    fields = status_fields(engine.run(busybox, ["sh", "-c", STATUS], runtime=runtime).output)
    default = capabilities.mask(capabilities.DEFAULT)
    for name in ("CapPrm", "CapEff", "CapBnd"):
        assert capabilities.names(int(fields[name], 16)) == capabilities.names(default), name
    assert int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0
    assert (fields["NoNewPrivs"], fields["Seccomp"]) == ("1", "2")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_privileged_and_the_options_lift_exactly_what_they_say(busybox, runtime):
    def fields(profile: Profile) -> dict[str, str]:
        return status_fields(engine.run(busybox, ["sh", "-c", STATUS], runtime=runtime, profile=profile).output)

    privileged = fields(Profile.build(privileged=True))
    assert int(privileged["CapEff"], 16) == held("CapEff")  # all that this (root) process has
    assert (privileged["NoNewPrivs"], privileged["Seccomp"]) == ("0", "0")
    unconfined = fields(Profile.build(security_opt=["seccomp=unconfined"]))
    assert (unconfined["NoNewPrivs"], unconfined["Seccomp"]) == ("1", "0")
    assert int(unconfined["CapEff"], 16) == capabilities.mask(capabilities.DEFAULT)
    adjusted = fields(Profile.build(cap_add=["SYS_TIME"], cap_drop=["NET_RAW", "cap_mknod"],
                                    security_opt=["no-new-privileges=false"]))
    assert set(capabilities.names(int(adjusted["CapEff"], 16))) == \
        set(capabilities.DEFAULT) - {"NET_RAW", "MKNOD"} | {"SYS_TIME"}
    assert (adjusted["NoNewPrivs"], adjusted["Seccomp"]) == ("0", "2")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_proc_is_masked_and_read_only_sys_is_read_only_and_dev_is_fresh(busybox, runtime):
    script = ("cat /proc/timer_list | wc -c; ls /sys/firmware | wc -l; "
              "(echo x > /proc/sys/kernel/hostname) 2>/dev/null && echo wrote || echo ro; "
              "(touch /sys/lxclab) 2>/dev/null && echo wrote || echo ro; ls /dev | sort | tr '\\n' ' '")
    output = engine.run(busybox, ["sh", "-c", script], runtime=runtime).output
    timer_list, firmware, proc_sys, sys, dev = output.splitlines()
    assert (timer_list, firmware, proc_sys, sys) == ("0", "0", "ro", "ro")
    assert set(dev.split()) <= {"null", "zero", "full", "random", "urandom", "tty", "console", "pts", "ptmx", "shm",
                                "fd", "stdin", "stdout", "stderr", "mqueue", "lxc", "tty1", "tty2", "tty3", "tty4"}
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm"} <= set(dev.split())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_pid_1_has_a_session_of_its_own(busybox, runtime):
    sid, pid = engine.run(busybox, ["sh", "-c", "cut -d' ' -f6 /proc/1/stat; echo 1"], runtime=runtime,
                          stdin=0).output.split()
    assert sid == pid == "1"


def test_the_profile_round_trips_and_refuses_unknown_options():
    profile = Profile.build(cap_add=["ALL"], cap_drop=["SYS_ADMIN"], security_opt=["seccomp:unconfined"])
    assert Profile.from_dict(profile.to_dict()) == profile
    assert "SYS_ADMIN" not in profile.capabilities and len(profile.capabilities) == len(capabilities.ALL) - 1
    assert Profile.from_dict({}) == Profile() and Profile().masked_paths == MASKED_PATHS
    assert Profile().readonly_paths == READONLY_PATHS
    with pytest.raises(InvalidValue, match="unknown --security-opt 'apparmor=x'"):
        Profile.build(security_opt=["apparmor=x"])
    with pytest.raises(InvalidValue, match="unknown capability 'SYS_WIZARD'"):
        Profile.build(cap_add=["SYS_WIZARD"])


def test_the_filter_reads_as_assembly_and_checks_the_architecture_first():
    text = seccomp.listing(capabilities.DEFAULT, "x86_64")
    lines = text.splitlines()
    assert lines[0].split() == ["0", "ld", "[arch]"] and "0xc000003e" in lines[1]
    assert "(keyctl)" in text and "(mount)" in text and "(clone)" in text and lines[-1].endswith("ret ALLOW")
    assert "(chroot)" not in text  # SYS_CHROOT is kept, so chroot is allowed
    assert "(settimeofday)" not in seccomp.listing(capabilities.DEFAULT + ("SYS_TIME",), "x86_64")
    assert len(seccomp.program(capabilities.DEFAULT, "aarch64")) % 8 == 0


def _calls_under_filter() -> dict[str, int]:
    """In a child: install the default filter, then try calls the kernel would otherwise answer; their errnos."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    restrict(Profile())
    numbers = seccomp.SYSCALLS[seccomp.machine()]
    results = {}
    for name, args in {"keyctl": (0, 0), "unshare": (0,), "clone3": (0, 0)}.items():
        ctypes.set_errno(0)
        value = libc.syscall(numbers[name], *args)
        results[name] = ctypes.get_errno() if value == -1 else 0
    results["fork"] = _fork_works()
    return results


def _fork_works() -> int:
    """0 if a plain fork (clone without namespace flags) and its wait still work under the filter."""
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) - 7


@pytest.mark.skipif(os.geteuid() != 0, reason="restricting a process needs root (CAP_SETPCAP)")
def test_the_kernel_applies_the_filter_as_written():
    results = in_child(_calls_under_filter)
    assert results == {"keyctl": errno.EPERM, "unshare": errno.EPERM, "clone3": errno.ENOSYS, "fork": 0}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_runs_under_the_same_profile_as_pid_1(busybox, runtime, tmp_path):
    container = engine.start(busybox, ["sleep", "30"], runtime=runtime)
    output = tmp_path / "exec.out"
    with open(output, "wb") as out:
        status = engine.exec_in(container.id, ["sh", "-c", STATUS], stdout=out.fileno(), stderr=out.fileno())
    assert status.exit_code == 0, output.read_text()
    fields = status_fields(output.read_text())
    assert int(fields["CapEff"], 16) == int(fields["CapBnd"], 16) == capabilities.mask(capabilities.DEFAULT)
    assert (fields["NoNewPrivs"], fields["Seccomp"]) == ("1", "2")


def test_the_cli_flags_reach_the_profile(busybox):
    done = lxclab("run", "--rm", "--cap-drop", "ALL", "--cap-add", "kill", "--security-opt", "no-new-privileges=false",
                  busybox, "sh", "-c", STATUS)
    fields = status_fields(done.stdout)
    assert capabilities.names(int(fields["CapEff"], 16)) == ("KILL",) and fields["NoNewPrivs"] == "0", done.stderr
    done = lxclab("run", "--rm", "--privileged", busybox, "sh", "-c", STATUS)
    assert status_fields(done.stdout)["Seccomp"] == "0", done.stderr
    refused = lxclab("run", "--rm", "--security-opt", "apparmor=unconfined", busybox, "true")
    assert refused.returncode != 0 and "unknown --security-opt 'apparmor=unconfined'" in refused.stderr


@pytest.mark.parametrize("arch", sorted(seccomp.SYSCALLS))
def test_the_filter_answers_each_call_as_its_rules_say(arch):
    program = seccomp.instructions(capabilities.DEFAULT, arch)
    native, numbers = seccomp.ARCHITECTURES[arch], seccomp.SYSCALLS[arch]
    eperm, allow = seccomp.ERRNO | errno.EPERM, seccomp.ALLOW

    def verdict(name: str, arg0: int = 0, on: int = native) -> int:
        return seccomp.evaluate(program, numbers[name], on, arg0)

    assert [verdict(name) for name in ("keyctl", "bpf", "mount", "unshare", "settimeofday")] == [eperm] * 5
    assert verdict("clone3") == seccomp.ERRNO | errno.ENOSYS
    assert verdict("clone", 0x10000000) == eperm and verdict("clone", 0x11) == allow  # NEWUSER; a plain fork
    assert verdict("socket", 40) == eperm and verdict("socket", 2) == allow  # AF_VSOCK; AF_INET
    assert verdict("chroot") == allow  # SYS_CHROOT is kept
    assert verdict("keyctl", on=0x40000003) == eperm  # another architecture
    wider = seccomp.instructions(capabilities.DEFAULT + ("SYS_TIME",), arch)
    assert seccomp.evaluate(wider, numbers["settimeofday"], native) == allow


def test_lxc_gets_the_same_rules_in_its_own_format():
    text = seccomp.lxc_profile(capabilities.DEFAULT)
    lines = text.splitlines()
    assert lines[:3] == ["2", "denylist", "[all]"]
    assert "keyctl errno 1" in lines and "clone3 errno 38" in lines and "chroot errno 1" not in lines
    assert "clone errno 1 [0,0x10000000,SCMP_CMP_MASKED_EQ,0x10000000]" in lines
    assert "socket errno 1 [0,40,SCMP_CMP_EQ]" in lines
