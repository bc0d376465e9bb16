"""The build track's checks: each reference checkpoint passes, and plausible wrong answers fail with their hint.

Every check is run against the real classroom registry (or the kernel) and against at
least one wrong solution a learner could plausibly write, not only the empty stub.
"""

from __future__ import annotations

import json
import subprocess
import shutil
from pathlib import Path

import httpx
import nbformat
import pytest

from lxclab.buildtrack import checkpoints as ref
from lxclab.buildtrack import layer_checks, levels, registry_checks
from lxclab.buildtrack.feedback import ExerciseError
from lxclab.buildtrack.layer_tools import extract_files, safe_path
from lxclab.errors import UnsafeLayerEntry
from lxclab.layers import read_entries
from lxclab.manifest import ACCEPT
from fixture_lessons import lesson_classroom, load_tool, run_student_edition  # noqa: F401 - lesson_classroom: a seeded classroom

course = load_tool("course")

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "notebooks/build"


@pytest.fixture
def registry(lesson_classroom, lxclab_home) -> str:
    """A seeded classroom's URL, with a private LXCLAB_HOME for anything the checks pull.

    The classroom is this module's own (fixture_lessons): it stops, and its daemons are reaped,
    when the module ends, so no later test in this worker finds children it did not start.
    """
    return lesson_classroom.classroom.registry_url


def stub(*args):
    raise NotImplementedError("exercise: replace this line with your code")


# B1: the token dance -----------------------------------------------------------------------------

def naive_parse(header):
    """Splits on every comma: breaks `scope="...:pull,push"`."""
    _, _, rest = header.partition(" ")
    return dict(part.split("=", 1) and (part.split("=", 1)[0], part.split("=", 1)[1].strip('"')) for part in rest.split(","))


def test_the_reference_parser_passes_and_a_comma_splitter_fails_with_its_hint(capsys):
    registry_checks.check_parse_challenge(ref.parse_challenge)
    assert "✓ parse_challenge: all 5 cases agree" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="a quoted value may hold commas"):
        registry_checks.check_parse_challenge(naive_parse)
    with pytest.raises(ExerciseError, match="parse_challenge is not written yet"):
        registry_checks.check_parse_challenge(type("f", (), {})().__class__ and _named(stub, "parse_challenge"))


def _named(function, name):
    function.__name__ = name
    return function


def test_get_token_passes_and_wrong_scope_or_whole_answer_fail_with_hints(registry, capsys):
    registry_checks.check_get_token(ref.get_token, registry)
    assert "✓ get_token: a token for" in capsys.readouterr().out

    def get_token(registry, repository):  # asks for push only: the token server grants nothing
        ping = httpx.get(f"{registry}/v2/", trust_env=False)
        challenge = ref.parse_challenge(ping.headers["www-authenticate"])
        return httpx.get(challenge["realm"], params={"service": challenge["service"],
                                                     "scope": f"repository:{repository}:push"}, trust_env=False).json()["token"]

    with pytest.raises(ExerciseError, match=r"grants nothing.*Ask for scope=repository:lab/busybox:pull"):
        registry_checks.check_get_token(get_token, registry)

    def whole_answer(registry, repository):
        return json.dumps({"token": ref.get_token(registry, repository)})

    with pytest.raises(ExerciseError, match="not the whole answer"):
        registry_checks.check_get_token(_named(whole_answer, "get_token"), registry)


def test_fetch_passes_and_a_fetch_without_accept_is_told_to_send_it(registry, capsys):
    token = ref.get_token(registry, "lab/busybox")
    registry_checks.check_fetch(ref.fetch, token, registry)
    out = capsys.readouterr().out
    assert "✓ fetch manifests/latest" in out and "the config, digest verified" in out

    def fetch(registry, repository, kind, reference, token):  # no Accept header
        return httpx.get(f"{registry}/v2/{repository}/{kind}/{reference}", headers={"Authorization": f"Bearer {token}"},
                         follow_redirects=True, trust_env=False).content

    with pytest.raises(ExerciseError, match="Accept"):
        registry_checks.check_fetch(fetch, token, registry)

    def reserialised(registry, repository, kind, reference, token):
        return json.dumps(json.loads(ref.fetch(registry, repository, kind, reference, token))).encode()

    with pytest.raises(ExerciseError, match="exactly as the registry sent them"):
        registry_checks.check_fetch(_named(reserialised, "fetch"), token, registry)


# B2: index -> manifest -> config -----------------------------------------------------------------

def test_choose_manifest_must_look_at_the_os_too(registry, capsys):
    registry_checks.check_choose_manifest(ref.choose_manifest, registry)
    assert "all 3 cases agree" in capsys.readouterr().out

    def choose_manifest(index, architecture):  # ignores the OS: takes windows/amd64
        return next(d["digest"] for d in index["manifests"] if d["platform"]["architecture"] == architecture)

    with pytest.raises(ExerciseError, match="os 'linux' AND the architecture"):
        registry_checks.check_choose_manifest(choose_manifest, registry)


DIFF_IDS = ["sha256:" + c * 64 for c in "abc"]


@pytest.mark.parametrize("wrong", [
    lambda ids: ids,  # DiffIDs are not ChainIDs
    lambda ids: [ids[0]] + [ref.hashlib.sha256(f"{a} {b}".encode()).hexdigest() for a, b in zip(ids, ids[1:])],
], ids=["diff-ids", "no-prefix-and-previous-diff-id"])
def test_chain_ids_pass_and_wrong_ones_fail_with_the_rule(wrong, capsys):
    registry_checks.check_chain_ids(ref.chain_ids, DIFF_IDS)
    assert "all 3 cases agree" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="previous ChainID"):
        registry_checks.check_chain_ids(_named(wrong, "chain_ids"), DIFF_IDS)


def test_walk_passes_and_a_walk_that_keeps_the_first_manifest_fails(registry, capsys):
    registry_checks.check_walk(ref.walk, registry)
    assert capsys.readouterr().out.count("✓ walk latest") == 2

    def walk(registry, repository, tag, architecture):  # takes the first manifest of the index, whatever the platform
        token = ref.get_token(registry, repository)
        index = json.loads(ref.fetch(registry, repository, "manifests", tag, token))
        manifest = json.loads(ref.fetch(registry, repository, "manifests", index["manifests"][0]["digest"], token))
        return manifest, json.loads(ref.fetch(registry, repository, "blobs", manifest["config"]["digest"], token))

    with pytest.raises(ExerciseError, match="for arm64.*choose_manifest gives"):
        registry_checks.check_walk(walk, registry)


# B3: whiteouts and opaque directories ------------------------------------------------------------

def no_whiteouts(layer, root):
    """Extracts the layer's files and ignores every marker."""
    extract_files(layer, root)


def opaque_in_tar_order(layer, root):
    """Acts on each entry in tar order: the opaque marker then wipes the layer's own files."""
    extract_files(layer, root)
    for entry in read_entries(layer):
        target = safe_path(root, entry.path)
        if entry.kind == "opaque":
            for child in target.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        elif entry.kind == "whiteout" and (target.exists() or target.is_symlink()):
            shutil.rmtree(target) if target.is_dir() else target.unlink()


def unlink_only(layer, root):
    """Deletes whiteouts with unlink: fails on a directory."""
    for entry in read_entries(layer):
        target = safe_path(root, entry.path)
        if entry.kind == "whiteout" and target.exists():
            target.unlink()
        if entry.kind == "opaque":
            for child in target.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    extract_files(layer, root)


def opaque_removes_the_directory(layer, root):
    """Removes the opaque directory itself (and does the rest right)."""
    for entry in read_entries(layer):
        target = safe_path(root, entry.path)
        if entry.kind in ("opaque", "whiteout") and (target.exists() or target.is_symlink()):
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    extract_files(layer, root)


def test_the_reference_apply_layer_passes_every_case(capsys):
    layer_checks.check_apply_layer(ref.apply_layer)
    assert capsys.readouterr().out.count("✓") == len(layer_checks.CASES)


@pytest.mark.parametrize("wrong, hint", [
    (no_whiteouts, r"a whiteout deletes a file: .*\.wh\.NAME deletes NAME"),
    (opaque_in_tar_order, r"opaque marker empties .*before you add this layer's own files"),
    (unlink_only, r"a whiteout deletes a directory: apply_layer raised .*shutil.rmtree"),
    (opaque_removes_the_directory, r"opaque marker empties .*\(keep it\)"),
], ids=lambda value: getattr(value, "__name__", "hint"))
def test_wrong_whiteout_rules_fail_with_their_hint(wrong, hint):
    with pytest.raises(ExerciseError, match=hint):
        layer_checks.check_apply_layer(_named(wrong, "apply_layer"))


def test_unpack_gives_lxclabs_tree_and_a_reversed_stack_does_not(registry, capsys):
    layer_checks.check_unpack(ref.unpack, registry)
    assert "✓ unpack lab/busybox: 3 layers, the same tree as lxclab's" in capsys.readouterr().out

    def unpack(registry, repository, tag, architecture, root):  # top layer first
        manifest, config = ref.walk(registry, repository, tag, architecture)
        manifest["layers"].reverse()
        token = ref.get_token(registry, repository)
        root.mkdir(parents=True, exist_ok=True)
        for number, layer in enumerate(manifest["layers"]):
            blob = root.parent / f"blob{number}"
            blob.write_bytes(ref.fetch(registry, repository, "blobs", layer["digest"], token))
            ref.apply_layer(blob, root)
        return config

    with pytest.raises(ExerciseError, match="bottom \\(first\\) to top"):
        layer_checks.check_unpack(unpack, registry)


def test_safe_path_never_goes_through_a_symlink(tmp_path):
    (tmp_path / "etc").symlink_to("/etc")
    with pytest.raises(UnsafeLayerEntry, match="goes through the symlink /etc"):
        safe_path(tmp_path, "etc/passwd")
    with pytest.raises(UnsafeLayerEntry, match="not a plain path"):
        safe_path(tmp_path, "../x")
    assert safe_path(tmp_path, "etc") == tmp_path / "etc"


# the glue between levels -------------------------------------------------------------------------

def test_a_saved_level_is_loaded_by_the_next_and_the_checkpoint_stands_in_otherwise(lxclab_home, capsys):
    assert levels.load_level("B1")["get_token"] is ref.get_token
    assert "B1: parse_challenge, get_token, fetch (the reference checkpoint)" in capsys.readouterr().out
    namespace: dict = {}
    exec(compile("def chain_ids(diff_ids):\n    return ['mine']\n", "cell", "exec"), namespace)
    with pytest.raises(ValueError, match="level B2 saves choose_manifest, chain_ids, walk"):
        levels.save_level("B2", namespace["chain_ids"])
    saved = levels.save_level("B2", ref.choose_manifest, ref.chain_ids, ref.walk)
    assert saved == lxclab_home / "buildtrack/B2.py"
    mine = levels.load_level("B2")
    assert "(your own, from B2.py)" in capsys.readouterr().out
    assert mine["chain_ids"](DIFF_IDS) == ref.chain_ids(DIFF_IDS) and mine["walk"] is not ref.walk
    assert levels.load_level("B2", reference=True)["walk"] is ref.walk
    assert levels.needed("B8") == ["B1", "B2", "B3", "B5", "B6", "B7"]
    saved_b3 = levels.save_level("B3", ref.apply_layer, ref.unpack).read_text()
    assert "load_level('B1', quiet=True)" in saved_b3  # unpack calls walk, and get_token and fetch too


# B4: the overlay mount ---------------------------------------------------------------------------

def test_overlay_options_pass_and_bottom_first_lowers_fail(capsys):
    from lxclab.buildtrack import overlay_checks
    overlay_checks.check_overlay_options(ref.overlay_options)
    assert "all 2 cases agree" in capsys.readouterr().out

    def overlay_options(lowers, upper, work):  # the manifest's order: bottom layer would win
        return f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}"

    with pytest.raises(ExerciseError, match="lowerdir=TOP"):
        overlay_checks.check_overlay_options(overlay_options)


def test_mount_overlay_is_checked_in_a_child_and_a_bind_mount_is_not_an_overlay(registry, capsys):
    from lxclab.buildtrack import overlay_checks
    overlay_checks.check_mount_overlay(ref.mount_overlay, registry)
    assert "✓ mount_overlay: 3 layers merged" in capsys.readouterr().out

    def mount_overlay(lowers, upper, work, target):  # binds the top layer: not a union at all
        from lxclab import _linux
        _linux.mount(str(lowers[-1]), str(target), None, _linux.MS_BIND)

    with pytest.raises(ExerciseError, match="is not an overlay|mount\\('overlay'"):
        overlay_checks.check_mount_overlay(mount_overlay, registry)
    with pytest.raises(ExerciseError, match="mount_overlay is not written yet"):
        overlay_checks.check_mount_overlay(_named(stub, "mount_overlay"), registry)
    assert "lxclab-b4-" not in Path("/proc/self/mountinfo").read_text()  # the test process never saw the mounts


# the notebooks -----------------------------------------------------------------------------------

LEVELS = sorted(BUILD.glob("B[0-9]-*.ipynb"))


def test_there_are_build_levels_with_text_twins_in_step():
    assert course.build_levels() == LEVELS and len(LEVELS) >= 3
    assert course.stale_twins() == []


@pytest.mark.parametrize("level", LEVELS, ids=lambda path: path.stem)
def test_every_level_has_the_shape_of_a_lesson_and_stored_outputs(level: Path):
    notebook = nbformat.read(level, as_version=4)
    opening = notebook.cells[0].source
    for heading in ("What you'll do", "What you'll learn", "What you'll need", "**Time:**"):
        assert heading in opening, f"{level.name} does not open with {heading!r}"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert sum(cell.source.count("### BEGIN SOLUTION") for cell in code) >= 2, f"{level.name} has fewer than two exercises"
    assert sum(bool(course.CHECK_CALL.search(cell.source)) for cell in code) >= 2, f"{level.name} lacks check cells"
    assert all(cell.execution_count is not None for cell in code), f"{level.name}: run `make notebooks LESSONS={level}`"
    assert notebook.cells[-1].cell_type == "markdown" and "Keypoints" in notebook.cells[-1].source


# B5: the isolated process ------------------------------------------------------------------------

def chroot_only(rootfs, argv, hostname):
    """Forks and chroots, and nothing else: the host's hostname, PIDs and /proc show through."""
    import os
    import tempfile
    with tempfile.TemporaryFile() as output:
        pid = os.fork()
        if pid == 0:
            os.chroot(rootfs)
            os.chdir("/")
            os.dup2(output.fileno(), 1)
            os.execvpe(argv[0], argv, {"PATH": "/bin"})
        status = os.waitpid(pid, 0)[1]
        output.seek(0)
        return os.waitstatus_to_exitcode(status), output.read().decode()


def unshares_the_caller(rootfs, argv, hostname):
    """Unshares in the calling process before forking: the notebook itself would leave the host."""
    from lxclab import _linux
    _linux.unshare(_linux.CLONE_NEWUTS)
    return ref.run_isolated(rootfs, argv, hostname)


def test_run_isolated_agrees_with_lxclab_and_wrong_answers_get_their_hint(registry, capsys):
    from lxclab.buildtrack import isolation_checks
    isolation_checks.check_run_isolated(ref.run_isolated, registry)
    assert "✓ run_isolated: hostname mydocker, pid 1" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="unshare CLONE_NEWUTS, then sethostname"):
        isolation_checks.check_run_isolated(_named(chroot_only, "run_isolated"), registry)
    with pytest.raises(ExerciseError, match="changed the namespaces of the process that called it.*fork"):
        isolation_checks.check_run_isolated(_named(unshares_the_caller, "run_isolated"), registry)


def chroot_without_chdir(rootfs, argv):
    """chroot but no chdir('/'): the working directory stays outside the root."""
    import os
    import tempfile
    with tempfile.TemporaryFile() as output:
        pid = os.fork()
        if pid == 0:
            os.chroot(rootfs)
            os.dup2(output.fileno(), 1)
            os.execvpe(argv[0], argv, {"PATH": "/bin"})
        status = os.waitpid(pid, 0)[1]
        output.seek(0)
        return os.waitstatus_to_exitcode(status), output.read().decode()


def test_chroot_run_agrees_with_lxclab_and_forgetting_chdir_is_caught(registry, capsys):
    from lxclab.buildtrack import isolation_checks
    isolation_checks.check_chroot_run(ref.chroot_run, registry)
    assert "✓ chroot_run: the same / and working directory" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=r"os.chdir\('/'\)"):
        isolation_checks.check_chroot_run(_named(chroot_without_chdir, "chroot_run"), registry)
    with pytest.raises(ExerciseError, match="chroot_run is not written yet"):
        isolation_checks.check_chroot_run(_named(stub, "chroot_run"), registry)


# B6: cgroup limits -------------------------------------------------------------------------------

def v1_names_everywhere(version, memory_bytes, cpus, pids):
    """Uses cgroup v1's names whatever the version."""
    return ref.limit_files(1, memory_bytes, cpus, pids)


def cpus_as_a_fraction(version, memory_bytes, cpus, pids):
    """Writes the number of CPUs where the kernel wants microseconds."""
    files = ref.limit_files(version, memory_bytes, cpus, pids)
    return {key: (str(cpus) if key[1] in ("cpu.max", "cpu.cfs_quota_us") else value) for key, value in files.items()}


@pytest.mark.parametrize("wrong", [v1_names_everywhere, cpus_as_a_fraction], ids=lambda f: f.__name__)
def test_limit_files_agree_with_lxclab_on_both_versions_and_wrong_names_or_units_fail(wrong, capsys):
    from lxclab.buildtrack import cgroup_checks
    cgroup_checks.check_limit_files(ref.limit_files)
    assert "all 4 cases agree" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="v2: memory.max, memory.swap.max = 0, cpu.max = 'QUOTA PERIOD'"):
        cgroup_checks.check_limit_files(_named(wrong, "limit_files"))


def test_write_limits_are_held_by_the_kernel_and_a_hog_is_killed_and_memory_only_fails(capsys):
    from lxclab import cgroups
    from lxclab.buildtrack import cgroup_checks
    cgroup_checks.check_write_limits(ref.write_limits, ref.limit_files)
    assert "a 128 MiB hog under 48 MiB was killed by SIGKILL" in capsys.readouterr().out

    def write_limits(dirs, files):  # only the memory files
        ref.write_limits(dirs, {key: value for key, value in files.items() if key[0] == "memory"})

    with pytest.raises(ExerciseError, match="each in the directory of its controller"):
        cgroup_checks.check_write_limits(write_limits, ref.limit_files)
    left = [p for d in set(cgroups.detect().own_dirs.values()) for p in Path(d).glob("lxclab-b6-*")]
    assert left == []  # the check's groups are removed, passed or failed


# B7: capabilities --------------------------------------------------------------------------------

def test_capability_mask_agrees_with_the_kernel_and_numbering_from_one_fails(capsys):
    from lxclab.buildtrack import capability_checks
    capability_checks.check_capability_mask(ref.capability_mask)
    assert "all 4 cases agree" in capsys.readouterr().out

    def capability_mask(names):  # counts from 1
        return sum(1 << (ref.CAPABILITIES[name] + 1) for name in set(names))

    with pytest.raises(ExerciseError, match="bit n"):
        capability_checks.check_capability_mask(capability_mask)


def bounding_set_only(keep):
    """Drops only from the bounding set: the process itself keeps every capability."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    mask = ref.capability_mask(keep)
    for number in range(41):
        if not mask >> number & 1:
            libc.prctl(ref.PR_CAPBSET_DROP, number, 0, 0, 0)


def capset_only(keep):
    """capset without touching the bounding set: exec of a setuid program would regain everything."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    mask = ref.capability_mask(keep)
    data = (ref.CapData * 2)(ref.CapData(mask & 0xFFFFFFFF, mask & 0xFFFFFFFF, 0), ref.CapData(mask >> 32, mask >> 32, 0))
    libc.capset(ctypes.byref(ref.CapHeader(ref.LINUX_CAPABILITY_VERSION_3, 0)), data)


@pytest.mark.parametrize("wrong, hint", [
    (bounding_set_only, "capset the effective and permitted sets"),
    (capset_only, "PR_CAPBSET_DROP"),
], ids=["bounding-set-only", "capset-only"])
def test_drop_capabilities_in_a_child_and_half_drops_fail_with_their_hint(wrong, hint, capsys):
    from lxclab.buildtrack import capability_checks
    from lxclab.lessons import effective_capabilities
    before = effective_capabilities()
    capability_checks.check_drop_capabilities(ref.drop_capabilities)
    assert "unshare (CAP_SYS_ADMIN) refused" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=hint):
        capability_checks.check_drop_capabilities(_named(wrong, "drop_capabilities"))
    assert effective_capabilities() == before  # the drops happened in children only


# B8: the capstone --------------------------------------------------------------------------------

def test_the_reference_mydocker_behaves_as_lxclab_run_and_one_without_limits_does_not(registry, capsys):
    from lxclab.buildtrack import capstone_checks
    image = f"{registry.split('://', 1)[1]}/lab/busybox"
    capstone_checks.check_mydocker(ref.mydocker_run, image)
    out = capsys.readouterr().out
    assert out.count("as lxclab run") == len(capstone_checks.CASES) and "memory limit: " in out and "status 137" in out

    def mydocker_run(image, argv, memory_bytes, cpus, pids, hostname):  # forgets the cgroup: the hog is not stopped
        return ref.mydocker_run(image, argv, 1 << 40, cpus, pids, hostname) if "while" not in " ".join(argv) \
            else (0, "")

    with pytest.raises(ExerciseError, match="memory limit: .*cgroup.procs"):
        capstone_checks.check_mydocker(mydocker_run, image)

    def ignores_the_hostname(image, argv, memory_bytes, cpus, pids, hostname):
        return ref.mydocker_run(image, argv, memory_bytes, cpus, pids, "container")

    with pytest.raises(ExerciseError, match="host name: mydocker gave status 0 and 'container'.*sethostname"):
        capstone_checks.check_mydocker(_named(ignores_the_hostname, "mydocker_run"), image)


def run_without_the_group(rootfs, argv, hostname, group_dirs, keep):
    """Everything but joining the cgroup (harmless here: the probe allocates nothing)."""
    return ref.run_contained(rootfs, argv, hostname, {}, keep)


def run_with_all_capabilities(rootfs, argv, hostname, group_dirs, keep):
    """Forgets to drop capabilities: level 5's steps and the cgroup, but no drop_capabilities before exec."""
    drop, ref.drop_capabilities = ref.drop_capabilities, lambda keep: None
    try:
        return ref.run_contained(rootfs, argv, hostname, group_dirs, keep)
    finally:
        ref.drop_capabilities = drop


@pytest.mark.parametrize("wrong, hint", [
    (run_without_the_group, "cgroup.procs"), (run_with_all_capabilities, "drop_capabilities"),
], ids=["no-cgroup", "all-capabilities"])
def test_run_contained_passes_and_forgetting_the_group_or_the_drop_fails(wrong, hint, registry, capsys):
    from lxclab.buildtrack import capstone_checks
    capstone_checks.check_run_contained(ref.run_contained, registry)
    assert "✓ run_contained: pid 1, host name mydocker" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=hint):
        capstone_checks.check_run_contained(_named(wrong, "run_contained"), registry)


# without root ------------------------------------------------------------------------------------

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
WITHOUT_ROOT = """
from lxclab.buildtrack import checkpoints as ref
from lxclab.buildtrack.capability_checks import check_capability_mask
from lxclab.buildtrack.cgroup_checks import check_limit_files
check_capability_mask(ref.capability_mask)  # these two run anywhere: pure functions against libcap and lxclab
check_limit_files(ref.limit_files)
from lxclab.buildtrack.overlay_checks import check_mount_overlay
from lxclab.buildtrack.isolation_checks import check_chroot_run, check_run_isolated
from lxclab.buildtrack.cgroup_checks import check_write_limits
from lxclab.buildtrack.capability_checks import check_drop_capabilities
from lxclab.buildtrack.capstone_checks import check_mydocker, check_run_contained
registry = "http://127.0.0.1:9"  # never reached: a check that cannot run must not touch anything
check_mount_overlay(ref.mount_overlay, registry)
check_chroot_run(ref.chroot_run, registry)
check_run_isolated(ref.run_isolated, registry)
check_write_limits(ref.write_limits, ref.limit_files)
check_drop_capabilities(ref.drop_capabilities)
check_run_contained(ref.run_contained, registry)
check_mydocker(ref.mydocker_run, "127.0.0.1:9/lab/busybox")
"""


def test_without_root_every_privileged_check_says_what_it_would_do_and_ticks_nothing(nobody_python, tmp_path):
    tmp_path.chmod(0o777)
    done = subprocess.run([*AS_NOBODY, nobody_python.python, "-c", WITHOUT_ROOT], capture_output=True, text=True,
                          timeout=120, env=nobody_python.env(LXCLAB_HOME=str(tmp_path / "home")))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["✓ capability_mask: all 4 cases agree with lxclab", "✓ limit_files: all 4 cases agree with lxclab"]
    assert len(lines) == 9 and all(line.startswith("– not checked here: ") for line in lines[2:]), lines
    assert "✓" not in "".join(lines[2:])


# the student edition -----------------------------------------------------------------------------

def test_each_levels_student_edition_says_not_written_yet_then_passes_once_solved(lesson_classroom, tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    for level in LEVELS:  # in order, in one LXCLAB_HOME: each level loads the ones the learner saved before it
        checks = run_student_edition(level, folder, lesson_classroom.env)
        assert len(checks) >= 2, f"{level.name} has fewer than two check cells"
        for index, unsolved, solved in checks:
            assert "ExerciseError: " in unsolved and "is not written yet" in unsolved, f"{level.name} cell {index}: {unsolved}"
            assert "Error" not in solved and "✓" in solved, f"{level.name} cell {index} with the solution: {solved}"
    assert sorted(p.name for p in (lesson_classroom.home / "buildtrack").glob("B*.py")) == [f"B{n}.py" for n in range(1, 9)]
