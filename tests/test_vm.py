"""`./kit vm-test` and `./kit vm-image`: arguments, cache keys and the QEMU command they plan, without booting
Debian; QEMU itself only with no disk, to prove that an interrupted run stops its VM."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from polling import eventually

ROOT = Path(__file__).resolve().parents[1]


def plan(*args: str, checkout: Path = ROOT, **env: str) -> dict[str, str]:
    """The `key=value` lines `vm.sh plan ...` prints, as a dict."""
    done = vm(*args, checkout=checkout, **env)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def vm(*args: str, checkout: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LXCLAB_VM_")} | env
    command = [str(checkout / "scripts/vm/vm.sh"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, check=False, timeout=60)


def test_vm_test_defaults_to_bookworm_and_a_cache_inside_the_checkout() -> None:
    planned = plan("plan", "test")
    assert planned["release"] == "bookworm"
    assert planned["cache"] == str(ROOT / "_build/vm")
    assert planned["base"].startswith(str(ROOT / "_build/vm/bookworm/base-"))
    assert planned["pytest_args"].strip() == ""


def test_the_cache_follows_lxclab_vm_cache_and_pytest_arguments_pass_through_unchanged(tmp_path: Path) -> None:
    planned = plan("plan", "test", "trixie", "--", "tests/test_cgroups.py", "-x", "-k", "v2 and memory",
                   LXCLAB_VM_CACHE=str(tmp_path))
    assert planned["release"] == "trixie"
    assert planned["kit"].startswith(f"{tmp_path}/trixie/kit-")
    assert shlex.split(planned["pytest_args"]) == ["tests/test_cgroups.py", "-x", "-k", "v2 and memory"]


def test_the_vm_boots_under_tcg_without_a_network_and_with_the_job_shared_over_9p() -> None:
    qemu = shlex.split(plan("plan", "test")["qemu"])
    assert qemu[0] == "qemu-system-x86_64"
    assert qemu[qemu.index("-accel") + 1] == "tcg,thread=multi"
    assert qemu[qemu.index("-cpu") + 1] == "Nehalem"  # no AVX: Chromium under TCG renders the slide deck then
    assert qemu[qemu.index("-nic") + 1] == "none"
    assert "mount_tag=lxclab" in qemu[qemu.index("-virtfs") + 1]
    assert "console=ttyS0" in qemu[qemu.index("-append") + 1]


def test_kvm_is_used_only_when_asked_for() -> None:
    qemu = shlex.split(plan("plan", "test", LXCLAB_VM_ACCEL="kvm")["qemu"])
    assert qemu[qemu.index("-accel") + 1] == "kvm"
    assert qemu[qemu.index("-cpu") + 1] == "host,-arch-capabilities"
    done = vm("plan", "test", LXCLAB_VM_ACCEL="hvf")
    assert done.returncode == 1 and "LXCLAB_VM_ACCEL must be tcg or kvm, not 'hvf'" in done.stderr


def test_lxclab_vm_cpu_chooses_tcgs_cpu_model() -> None:
    qemu = shlex.split(plan("plan", "test", LXCLAB_VM_CPU="max")["qemu"])
    assert qemu[qemu.index("-cpu") + 1] == "max"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "test", "sid"], "unknown release 'sid' (known: bookworm trixie)"),
        (["plan", "test", "bookworm", "-x"], "unexpected '-x': pytest arguments go after --"),
        (["plan", "image", "--", "-x"], "vm-image takes no pytest arguments"),
        (["plan", "boot"], "unknown command 'boot'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ],
)
def test_bad_arguments_are_a_usage_error_that_names_the_word(args: list[str], message: str) -> None:
    done = vm(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "vm.sh test  [bookworm|trixie] [-- pytest args]" in done.stderr


def _repo_with_vm_scripts(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts/vm", repo / "scripts/vm")
    shutil.copy(ROOT / "scripts/debs.sh", repo / "scripts/debs.sh")
    (repo / "scripts/setup.sh").write_text("debs=(lxc)\n")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    _git(repo, "init", "-q")
    _commit(repo, "first")
    return repo


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", message)


def test_the_kit_image_is_rebuilt_when_what_setup_installs_changes_and_only_then(tmp_path: Path) -> None:
    repo = _repo_with_vm_scripts(tmp_path)
    first = plan("plan", "test", checkout=repo)
    (repo / "README.md").write_text("a change setup does not read\n")
    _commit(repo, "docs")
    assert plan("plan", "test", checkout=repo) == first
    (repo / "scripts/setup.sh").write_text("debs=(lxc rsync)\n")
    _commit(repo, "setup installs rsync")
    second = plan("plan", "test", checkout=repo)
    assert second["base"] == first["base"]
    assert second["kit"] != first["kit"]


def test_the_releases_get_separate_images() -> None:
    bookworm, trixie = plan("plan", "test", "bookworm"), plan("plan", "test", "trixie")
    assert bookworm["base"] != trixie["base"].replace("trixie", "bookworm")
    assert bookworm["kit"].split("/")[-2:][0] == "bookworm" and trixie["kit"].split("/")[-2:][0] == "trixie"


def test_the_image_is_a_stock_debian_with_its_kernel_systemd_apparmor_and_grub() -> None:
    packages = plan("plan", "test")["base_packages"].split()
    assert {"linux-image-amd64", "systemd-sysv", "apparmor", "grub-pc", "dbus"} <= set(packages)
    base = (ROOT / "scripts/vm/base.sh").read_text()
    assert "GRUB_CMDLINE" not in base and "apparmor=0" not in base and "systemd.unified_cgroup_hierarchy" not in base


def _unit(text: str) -> dict[str, str]:
    body = text.split("lxclab-classroom.service <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


def test_the_workshop_image_starts_the_readmes_classroom_at_boot() -> None:
    unit = _unit((ROOT / "scripts/vm/image-guest.sh").read_text())
    assert unit["ExecStart"].startswith("/root/lxclab/kit classroom ")
    assert unit["WantedBy"] == "multi-user.target"
    assert "console" in unit["StandardOutput"]  # the URL with its token shows on the console


def test_the_workshop_vm_is_reachable_from_the_hosts_loopback_only() -> None:
    image = (ROOT / "scripts/vm/image.sh").read_text()
    forwards = [word for word in image.replace(",", " ").split() if word.startswith("hostfwd=")]
    assert forwards and all(f.startswith("hostfwd=tcp:127.0.0.1:") for f in forwards)
    assert "restrict=on" in image


def install_debs(*packages: str) -> subprocess.Popen[str]:
    """scripts/debs.sh's install_debs for `packages`, started."""
    script = f'source {shlex.quote(str(ROOT / "scripts/debs.sh"))}; install_debs test "$@"'
    return subprocess.Popen(["bash", "-c", script, "bash", *packages], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def descendants(pid: int) -> list[str]:
    """The program names of process `pid`'s descendants (one that ends while they are read is left out)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return []
    names = []
    for child in children:
        try:
            names.append(Path(f"/proc/{child}/comm").read_text().strip())
        except (FileNotFoundError, ProcessLookupError):
            continue
        names += descendants(int(child))
    return names


def test_installing_debian_packages_that_are_there_runs_no_apt() -> None:
    done = install_debs("bash", "coreutils")
    assert (done.wait(timeout=30), done.stdout.read(), done.stderr.read()) == (0, "", "")


def test_two_kit_runs_side_by_side_queue_for_apt_instead_of_failing_on_its_lock() -> None:
    # Two `./kit vm-test` started together: the second's apt-get stopped at once on apt's lists lock.
    with open("/run/lock/lxclab-apt.lock", "w") as lock:
        subprocess.run(["flock", "-n", str(lock.fileno())], pass_fds=(lock.fileno(),), check=True)  # held by `lock`
        waiting = install_debs("lxclab-no-such-package")
        try:
            assert eventually(lambda: "flock" in descendants(waiting.pid), timeout=10)
            time.sleep(1)
            assert waiting.poll() is None and "apt-get" not in descendants(waiting.pid)
        finally:
            os.killpg(waiting.pid, signal.SIGKILL)
            waiting.wait()
    assert waiting.stderr.read() == "test: installing Debian packages: lxclab-no-such-package\n"


def start_a_vm(tmp_path: Path) -> subprocess.Popen[str]:
    """lib.sh's vm_start and vm_wait on a real QEMU with no disk (its firmware finds nothing to boot and waits)."""
    assert shutil.which("qemu-system-x86_64"), "./kit setup installs qemu-system-x86"
    script = (f"VM_CHECKOUT={shlex.quote(str(ROOT))}; source {shlex.quote(str(ROOT / 'scripts/vm/lib.sh'))}; "
              f"vm_start {shlex.quote(str(tmp_path / 'qemu.pid'))} {shlex.quote(str(tmp_path / 'console.log'))} 120 "
              "qemu-system-x86_64 -machine q35 -m 64 -display none -monitor none -serial stdio -nic none -accel tcg; "
              "vm_wait; echo powered off")
    # A shell cannot trap a signal that was ignored when it started, and a suite started in the background (as a
    # job of a script) runs with SIGINT ignored: give the script the default a terminal's shell has.
    return subprocess.Popen(["env", "--default-signal=INT", "bash", "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.parametrize(("signal_number", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_kill_stops_the_vm_and_not_only_the_script(tmp_path: Path, signal_number: int, status: int) -> None:
    # `timeout` puts QEMU in a process group of its own, out of reach of a terminal's Ctrl-C: a script that waited
    # for it in the foreground hung with the VM running on (for up to the run's 4 hours).
    script = start_a_vm(tmp_path)
    try:
        pidfile = tmp_path / "qemu.pid"
        assert eventually(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=30)
        qemu = int(pidfile.read_text())
        assert Path(f"/proc/{qemu}/comm").read_text().strip().startswith("qemu-system")
        os.killpg(script.pid, signal_number)  # a Ctrl-C signals the terminal's foreground process group
        assert script.wait(timeout=30) == status
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
    assert not Path(f"/proc/{qemu}").exists()
    assert "powered off" not in script.stdout.read()
    assert script.stderr.read() == "vm: stopped the VM\n"
