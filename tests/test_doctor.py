"""`lxclab doctor` on this machine: as root every lesson runs for real; as nobody it says which only show, and why.

Every run is the real command in a child process, with the classroom's ports moved to free
ones (other checkouts may hold 5000 and 5001) and LXCLAB_HOME in a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixture_nobody import NobodyPython
from polling import SLOWDOWN

from lxclab import cgroups, doctor, procfs
from lxclab.classroom import Classroom
from lxclab.classroom.daemon import free_port
from lxclab.doctor import Check, Lesson, checks, judge

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
             "--bounding-set=-all"]
LESSONS = [f"{n:02d}" for n in range(11)]
PRIVILEGED = {"04", "05", "06", "07", "08", "09", "10"}


@pytest.fixture
def home() -> Iterator[Path]:
    """An LXCLAB_HOME that nobody can read too (pytest's tmp_path is closed to other users)."""
    folder = Path(tempfile.mkdtemp(prefix="lxclab-doctor-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def doctor_env(home: Path, **ports: int) -> dict[str, str]:
    """This environment with LXCLAB_HOME at `home` and the classroom's ports free (or as given)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LXCLAB_")}
    return {**env, "LXCLAB_HOME": str(home), "LXCLAB_REGISTRY_PORT": str(ports.get("registry", free_port())),
            "LXCLAB_TOKEN_PORT": str(ports.get("token", free_port()))}


def run_doctor(env: dict[str, str], *options: str, prefix: tuple[str, ...] = (),
               python: str = sys.executable) -> subprocess.CompletedProcess:
    """`python -m lxclab doctor OPTIONS`, from a folder every user may enter."""
    return subprocess.run([*prefix, python, "-m", "lxclab", "doctor", *options], env=env, cwd="/tmp",
                          capture_output=True, text=True, timeout=60 * SLOWDOWN)  # over 60 s beside a TCG Chromium


def as_json(done: subprocess.CompletedProcess) -> dict:
    """The --json report of a finished doctor run."""
    assert not done.stderr and done.stdout.startswith("{"), done.stdout + done.stderr
    return json.loads(done.stdout)


def verdicts(report: dict) -> dict[str, dict]:
    """{lesson number: its entry} from a --json report."""
    return {lesson["number"]: lesson for lesson in report["lessons"]}


def test_as_root_every_lesson_runs_for_real(home):
    done = run_doctor(doctor_env(home), "--json")
    report = as_json(done)
    failed = {check["name"]: check["detail"] for check in report["checks"] if not check["ok"]}
    assert done.returncode == 0 and report["ready"], failed
    assert list(verdicts(report)) == LESSONS
    assert {lesson["outcome"] for lesson in report["lessons"]} == {"real"}
    names = {check["name"]: check for check in report["checks"]}
    expected = {1: r"v1: memory, cpu, cpuacct, pids at /sys/fs/cgroup/memory\S*; made a group with limits there$",
                2: r"v2: cpu, memory, pids at /sys/fs/cgroup\S*; made a group with limits there$"}
    assert re.match(expected[cgroups.detect().version], names["cgroups"]["detail"]), names["cgroups"]

    assert names["user namespaces"]["detail"] == "uid 65534 made one and became root in it"
    assert names["overlayfs"]["detail"].startswith("mounted, wrote through it, left a whiteout")
    assert names["userxattr"]["ok"] and names["python-lxc"]["ok"] and names["root"]["ok"]


def test_the_table_says_every_lesson_runs_for_real(home):
    done = run_doctor(doctor_env(home))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.match(r"^root +ok +uid 0 with CAP_SYS_ADMIN$", lines[3])
    for number in LESSONS:
        assert any(re.match(rf"^{number} \S+ +for real$", line) for line in lines), number
    assert lines[-1] == "Every lesson runs for real here."


def run_as_nobody(home: Path, nobody_python: NobodyPython, *options: str) -> subprocess.CompletedProcess:
    """The doctor as nobody without capabilities, from a world-readable copy of lxclab, on a copy of the lessons."""
    lessons = home / "notebooks"
    lessons.mkdir(exist_ok=True)
    for notebook in ROOT.glob("notebooks/[0-9][0-9]-*.ipynb"):
        shutil.copy(notebook, lessons)
    settings = {key: value for key, value in doctor_env(home).items() if key.startswith("LXCLAB_")}
    env = nobody_python.env(**settings, HOME="/nonexistent")
    return run_doctor(env, "--notebooks", str(lessons), *options, prefix=tuple(AS_NOBODY), python=nobody_python.python)


def test_as_nobody_the_privileged_lessons_only_show_and_say_why(home, nobody_python):
    done = run_as_nobody(home, nobody_python, "--json")
    report = as_json(done)
    names = {check["name"]: check for check in report["checks"]}
    assert done.returncode == 1 and not report["ready"], names
    assert not names["root"]["ok"] and names["root"]["detail"].startswith("uid 65534 (nobody), not root")
    assert names["root"]["fix"] == checks.ROOT_FIX
    assert names["user namespaces"]["ok"], names["user namespaces"]  # nobody may make one on this machine
    assert names["overlayfs"]["detail"].startswith("not tried: mounting needs root")
    lessons = verdicts(report)
    for number in LESSONS:
        expected = "shown" if number in PRIVILEGED else "real"
        assert lessons[number]["outcome"] == expected, lessons[number]
        assert ("root" in lessons[number]["missing"]) == (number in PRIVILEGED)
    assert "mount the image's layers with overlayfs" in lessons["04"]["steps"]
    assert set(lessons["07"]["missing"]) == {"root", "cgroups"}
    if Path("/dev/kvm").exists():  # a note: no lesson needs it
        assert names["kvm"] == {"name": "kvm", "ok": False, "detail": "/dev/kvm is not usable by this user",
                                "fix": "adduser $USER kvm"}
    else:  # a VM without nested virtualisation, like ./kit vm-test's
        assert names["kvm"] == {"name": "kvm", "ok": False, "detail": "no /dev/kvm: VMs run under TCG (slow)",
                                "fix": "enable virtualisation (nested, in a VM); nothing else needs it"}
    assert not any("kvm" in lesson["missing"] for lesson in report["lessons"])


def test_as_nobody_the_table_lists_the_steps_only_shown(home, nobody_python):
    done = run_as_nobody(home, nobody_python)
    assert done.returncode == 1
    text = done.stdout
    assert re.search(r"^04 union-fs +for real, but 9 steps only shown \(root, overlayfs missing\)$", text, re.M)
    assert re.search(r"^ +shown, not run: mount the image's layers with overlayfs; ", text, re.M)
    assert re.search(r"^00 overview +for real$", text, re.M)
    assert f"fix: {checks.ROOT_FIX}" in text
    assert text.rstrip().endswith("0 fail: apply the fixes above; notebooks/TROUBLESHOOTING.md explains each line.")


def test_a_port_held_by_a_plain_socket_names_its_holder(home):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        report = as_json(run_doctor(doctor_env(home, registry=port), "--json"))
    check = next(check for check in report["checks"] if check["name"] == "registry port")
    this = Path("/proc/self/comm").read_text().strip()
    assert check == {"name": "registry port", "ok": False, "detail": f"127.0.0.1:{port}: in use by {this} (PID {os.getpid()})",
                     "fix": "stop it, or export LXCLAB_REGISTRY_PORT=<a free port> before ./kit classroom"}
    assert {lesson["outcome"] for lesson in report["lessons"]} == {"fails"}
    assert all("registry port" in lesson["missing"] for lesson in report["lessons"])


def test_a_port_held_by_debians_registry_service_says_how_to_stop_it(home):
    """Debian's service: `docker-registry serve /etc/docker/registry/config.yml` in the cgroup systemd names for its
    unit; here in a cgroup of ours whose name holds the unit's, on a free port."""
    port = free_port()
    env = {"REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}", "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(home / "data")}
    with cgroups.create(f"lxclab-test-{os.getpid()}-docker-registry.service") as unit:
        service = subprocess.Popen(["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            unit.add(service.pid)
            wait_listening(port)
            report = as_json(run_doctor(doctor_env(home, registry=port), "--json"))
        finally:
            service.kill()
            service.wait()
    check = next(check for check in report["checks"] if check["name"] == "registry port")
    assert check["detail"] == (f"127.0.0.1:{port}: in use by Debian's docker-registry service (PID {service.pid}; "
                               "stop it for good: systemctl disable --now docker-registry)")


def wait_listening(port: int, timeout: float = 10) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


def test_the_ports_of_a_running_classroom_are_ok(home, classroom: Classroom):
    env = {**doctor_env(home), "LXCLAB_CLASSROOM_DIR": str(classroom.state_dir)}
    report = as_json(run_doctor(env, "--json"))
    names = {check["name"]: check for check in report["checks"]}
    pids = classroom.status().pids
    assert names["registry port"] == {"name": "registry port", "ok": True, "fix": "", "detail":
                                      f"127.0.0.1:{classroom.registry_port}: lxclab's classroom registry serves "
                                      f"here (pid {pids['registry']})"}
    assert names["token port"]["detail"].endswith(f"token server serves here (pid {pids['token']})")


def test_another_classrooms_port_is_not_ours(home, classroom: Classroom):
    report = as_json(run_doctor(doctor_env(home, registry=classroom.registry_port), "--json"))
    check = next(check for check in report["checks"] if check["name"] == "registry port")
    assert not check["ok"]
    assert check["detail"] == (f"127.0.0.1:{classroom.registry_port}: in use by docker-registry "
                               f"(PID {classroom.status().pids['registry']})")


def test_before_setup_debians_python_says_to_run_setup(home):
    """./kit doctor runs Debian's python3 with the checkout on its path when there is no venv yet."""
    env = {**doctor_env(home), "PYTHONPATH": str(ROOT)}
    done = run_doctor(env, "--json", python="/usr/bin/python3")
    report = as_json(done)
    names = {check["name"]: check for check in report["checks"]}
    assert done.returncode == 1
    # a fresh clone has no lxclab.egg-info yet; after ./kit setup Debian's python finds it, but not httpx
    assert re.match(r"lxclab is not installed for /usr/bin/python3$|missing from /usr: .*\bhttpx\b",
                    names["python"]["detail"]), names["python"]
    assert names["python"]["fix"] == "./kit setup (as root)"
    assert names["registry port"]["detail"] == "not checked: lxclab's Python packages are missing"
    # on Python 3.13+ (Debian 13) setup installs Debian's python3-lxc, which Debian's python imports too
    if subprocess.run(["/usr/bin/python3", "-c", "import lxc"], capture_output=True, check=False).returncode == 0:
        assert names["python-lxc"]["detail"].startswith("imports (liblxc "), names["python-lxc"]
    else:
        assert names["python-lxc"]["detail"] == "the python-lxc binding is not importable (No module named 'lxc')"
        assert names["python-lxc"]["fix"].startswith("./kit setup")
    assert {lesson["outcome"] for lesson in report["lessons"]} == {"fails"}


def test_doctor_leaves_nothing_behind(home, monkeypatch):
    monkeypatch.setenv("LXCLAB_HOME", str(home))
    before = set(Path(tempfile.gettempdir()).glob("lxclab-doctor-*"))
    report = doctor.diagnose()
    assert report.check("overlayfs").ok and report.check("userxattr").ok and report.check("cgroups").ok
    assert set(Path(tempfile.gettempdir()).glob("lxclab-doctor-*")) == before
    assert list(home.iterdir()) == [] and "lxclab-doctor" not in Path("/proc/self/mountinfo").read_text()
    own_groups = set(cgroups.detect().own_dirs.values())
    assert [path for group in own_groups for path in group.glob("lxclab-doctor-*")] == []


def test_every_lesson_needs_what_its_code_uses():
    needs = {lesson.number: set(lesson.needs) for lesson in doctor.find_lessons()}
    assert needs == {
        "00": {"registry"}, "01": {"registry"}, "02": {"registry"}, "03": {"registry"},
        "04": {"registry", "root", "overlayfs"}, "05": {"registry", "root"},
        "06": {"registry", "root", "userns", "network"}, "07": {"registry", "root", "cgroups"},
        "08": {"registry", "root", "cgroups", "lxc"}, "09": {"registry", "root", "overlayfs", "lxc"},
        "10": {"registry", "root"},
    }


def test_a_new_lesson_is_judged_too(tmp_path):
    for source in ("08-lxc.ipynb", "00-overview.ipynb"):
        shutil.copy(ROOT / "notebooks" / source, tmp_path)
    shutil.copy(ROOT / "notebooks/05-chroot.ipynb", tmp_path / "10-security.ipynb")
    shutil.copy(ROOT / "notebooks/05-chroot.ipynb", tmp_path / "README.ipynb")
    lessons = doctor.find_lessons(tmp_path)
    assert [(lesson.number, lesson.name) for lesson in lessons] == [
        ("00", "overview"), ("08", "lxc"), ("10", "security")]
    assert lessons[2].steps[0] == "chroot(2) (CAP_SYS_CHROOT)"


def checks_all_ok(**broken: str) -> dict[str, Check]:
    """Every check the lessons rest on, ok except `broken` (name with _ for space -> detail)."""
    names = {name for group in doctor.NEED_CHECKS.values() for name in group}
    found = {name: Check(name, True, "ok") for name in names}
    for name, detail in broken.items():
        found[name.replace("_", " ")] = Check(name.replace("_", " "), False, detail, "fix it")
    return found


LXC_LESSON = Lesson("08", "lxc", ("registry", "root", "cgroups", "lxc"), ("start a container",))
ROOTLESS_LESSON = Lesson("06", "namespaces", ("registry", "root", "userns", "network"), ("unshare(2)",))


@pytest.mark.parametrize(("broken", "lesson", "outcome", "missing"), [
    ({}, LXC_LESSON, "real", ()),
    ({"root": "uid 1000"}, LXC_LESSON, "shown", ("root",)),
    ({"root": "uid 1000", "python-lxc": "not importable"}, LXC_LESSON, "shown", ("root", "python-lxc")),
    ({"python-lxc": "not importable"}, LXC_LESSON, "fails", ("python-lxc",)),
    ({"root": "uid 1000", "registry_port": "in use"}, LXC_LESSON, "fails", ("registry port", "root")),
    ({"user_namespaces": "EPERM"}, ROOTLESS_LESSON, "shown", ("user namespaces",)),
    ({"iproute2": "no ip"}, ROOTLESS_LESSON, "fails", ("iproute2",)),
    ({"disk": "12 MiB free"}, ROOTLESS_LESSON, "fails", ("disk",)),
])
def test_judge(broken, lesson, outcome, missing):
    verdict = judge(lesson, checks_all_ok(**broken))
    assert (verdict.outcome, set(verdict.missing)) == (outcome, set(missing))


def test_the_package_list_is_setups():
    setup = (ROOT / "scripts/setup.sh").read_text()
    listed = re.search(r"^debs=\(([^)]*)\)", setup, re.M)[1].split()
    assert list(doctor.PACKAGES) == listed


USERNS_OFF = r'''
import dataclasses, json, sys
from lxclab import _linux
_linux.unshare(_linux.CLONE_NEWUSER)
print("ready", flush=True)
sys.stdin.readline()
open("/proc/sys/user/max_user_namespaces", "w").write("0")
from lxclab.doctor import checks
print(json.dumps([dataclasses.asdict(check) for check in checks.check_user_namespaces()]))
'''


def test_user_namespaces_turned_off_are_reported_with_the_sysctl_to_fix():
    """In a user namespace of its own (uids 0-65535 mapped as on the host), max_user_namespaces=0 turns them off."""
    child = subprocess.Popen([sys.executable, "-c", USERNS_OFF], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd="/tmp")
    assert child.stdout.readline() == "ready\n"
    for name in ("uid_map", "gid_map"):
        Path(f"/proc/{child.pid}/{name}").write_text("0 0 65536")
    output, _ = child.communicate("go\n", timeout=30 * SLOWDOWN)
    userns, userxattr = json.loads(output)
    assert not userns["ok"] and userns["detail"] == (
        "uid 65534: unshare(CLONE_NEWNS|CLONE_NEWUSER) failed: No space left on device (errno 28); "
        "max_user_namespaces is 0")
    assert userns["fix"] == "sysctl -w user.max_user_namespaces=15000"
    assert not userxattr["ok"] and userxattr["detail"] == "rootless overlay: needs a user namespace"


def test_the_troubleshooting_page_explains_every_line_and_the_sections_fixes_name():
    guide = (ROOT / checks.GUIDE).read_text()
    report = doctor.diagnose()
    for check in report.checks:
        assert f"`{check.name}`" in guide, check.name
    headings = re.findall(r"^## (.+)$", guide, re.M)
    for section in ("User namespaces disabled", "cgroup v1 or v2"):
        assert any(heading.startswith(section) for heading in headings), section
    for problem in ("No root, or Binder", "Ports busy, Debian's registry service", "python-lxc missing", "No KVM"):
        assert any(heading.startswith(problem) for heading in headings), problem


def test_another_lessons_folder_is_judged_and_with_none_the_checks_decide(home, tmp_path):
    shutil.copy(ROOT / "notebooks/07-cgroups.ipynb", tmp_path)
    report = as_json(run_doctor(doctor_env(home), "--json", "--notebooks", str(tmp_path)))
    assert [(lesson["number"], lesson["outcome"]) for lesson in report["lessons"]] == [("07", "real")]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_doctor(doctor_env(home), "--notebooks", str(empty)).returncode == 0
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        done = run_doctor(doctor_env(home, token=held.getsockname()[1]), "--notebooks", str(empty))
    assert done.returncode == 1 and "LESSON" in done.stdout


PURE_V2 = """
for mount in $(awk '$9 ~ /^cgroup2?$/ {print $5}' /proc/self/mountinfo | sort -r); do umount "$mount"; done
mount -t cgroup2 none /sys/fs/cgroup
exec "$0" -c 'import json; from lxclab.doctor import checks; print(json.dumps(checks.check_cgroups().__dict__))'
"""


def test_on_a_v2_tree_without_its_controllers_the_cgroups_line_says_to_delegate_them():
    """In a private mount namespace, only cgroup2 mounted: on a hybrid host memory, cpu and pids stay bound to
    v1, so the v2 tree has none of them; on a pure v2 host (Debian 12, 13) it is the host's own tree, which has."""
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", PURE_V2, sys.executable],
                          capture_output=True, text=True, timeout=60 * SLOWDOWN, cwd="/tmp")
    assert done.returncode == 0, done.stderr
    hybrid = any(mount.fstype == "cgroup" for mount in procfs.mounts())
    if hybrid:
        assert json.loads(done.stdout) == {
            "name": "cgroups", "ok": False, "detail": "v2: no controllers at /sys/fs/cgroup; missing cpu, memory, pids",
            "fix": "delegate cpu, memory, pids to lxclab's cgroup (systemd: Delegate=yes)"}
    else:
        found = json.loads(done.stdout)
        assert found["ok"] and found["detail"].startswith("v2: cpu, memory, pids at /sys/fs/cgroup"), found


def test_the_userns_remap_range_is_checked_with_its_fix(tmp_path, monkeypatch):
    from lxclab import namespaces

    assert checks.check_userns_remap().ok  # ./kit setup made lxclab-remap and its range
    empty = tmp_path / "subuid"
    empty.write_text("someone:100000:65536\n")
    monkeypatch.setattr(namespaces, "SUBUID", empty)
    missing = checks.check_userns_remap()
    assert not missing.ok and "lxclab-remap" in missing.detail and missing.fix == "./kit setup (as root)"
