"""`lxclab commit` and `lxclab push`: a container's changes become one new layer, pushed to the classroom,
read back by skopeo and umoci (the oracles) and by lxclab itself."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
import uuid

import pytest
from cli_process import lxclab
from faultproxy import FaultProxy
from fixture_engine import busybox, engine_home  # noqa: F401

from lxclab.engine import commit as committing
from lxclab.engine import gc
from lxclab.engine import run as engine
from lxclab.errors import ContainerError
from lxclab.manifest import ImageConfig, chain_ids
from lxclab.store import Store

CHANGE = "echo changed > /opt/lab/README.txt; rm /opt/lab/bin/greet"


def layer_entries(blob: bytes) -> list[str]:
    """The member names of a gzip tar layer, in their order."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as archive:
        return archive.getnames()


def test_commit_push_and_pull_back_through_skopeo_umoci_and_lxclab(engine_home, seeded_classroom, tmp_path):
    repository = f"lab/changed-{uuid.uuid4().hex[:8]}"
    with FaultProxy(seeded_classroom.registry_host) as watching:  # forwards all, and logs what push asked for
        source, new_ref = f"{watching.host}/lab/busybox:latest", f"{watching.host}/{repository}:v1"
        assert lxclab("pull", "-q", source).returncode == 0
        run = lxclab("run", "--runtime", "lxc", "--name", "changer", source, "sh", "-c", CHANGE)
        assert run.returncode == 0, run.stderr
        committed = lxclab("commit", "-m", "change README, delete greet", "changer", new_ref)
        assert committed.returncode == 0, committed.stderr
        user, password = seeded_classroom.teacher
        assert lxclab("login", "-u", user, "--password-stdin", watching.host, stdin=password).returncode == 0
        pushed = lxclab("push", new_ref)
    stored, base = Store().image(new_ref), Store().image(source)
    assert committed.stdout.splitlines()[-1] == stored.digest
    assert (pushed.returncode, pushed.stdout.strip()) == (0, stored.digest), pushed.stderr
    # config and new layer uploaded; the three base layers mounted from lab/busybox, not sent again
    assert [e.status for e in watching.requests("POST", "mount=")] == [202, 201, 201, 201, 202]
    assert len(watching.requests("PUT", "/blobs/uploads/")) == 2

    assert stored.manifest.layers[:-1] == base.manifest.layers  # the base layers, unchanged, then one more
    entries = layer_entries(Store().read(stored.manifest.layers[-1].digest))
    assert {"opt/lab/README.txt", "opt/lab/bin/.wh.greet"} <= set(entries)
    assert stored.config.diff_ids[:-1] == base.config.diff_ids
    assert stored.config.history[-1].comment == "change README, delete greet"
    assert stored.config.history[-1].created_by == f"sh -c '{CHANGE}'"
    assert (stored.config.cmd, stored.config.env) == (base.config.cmd, base.config.env)

    direct = f"{seeded_classroom.registry_host}/{repository}:v1"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{direct}", f"oci:{tmp_path / 'oci'}:back"],
                   check=True, capture_output=True, timeout=120)
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{tmp_path / 'oci'}:back", str(bundle)], check=True,
                   capture_output=True, timeout=120)
    rootfs = bundle / "rootfs"
    assert (rootfs / "opt/lab/README.txt").read_text() == "changed\n"
    assert not (rootfs / "opt/lab/bin/greet").exists() and (rootfs / "opt/lab/bin/hello").is_file()
    assert not (rootfs / "etc/motd").exists()  # the base image's own whiteout still applies

    elsewhere = tmp_path / "elsewhere"
    assert lxclab("pull", "-q", direct, home=elsewhere).returncode == 0
    seen = lxclab("run", "--rm", direct, "sh", "-c", "cat README.txt; ls bin", home=elsewhere)
    assert (seen.returncode, seen.stdout) == (0, "changed\nhello\n"), seen.stderr
    seen_by_lxc = lxclab("run", "--rm", "--runtime", "lxc", direct, "cat", "README.txt", home=elsewhere)
    assert (seen_by_lxc.returncode, seen_by_lxc.stdout) == (0, "changed\n"), seen_by_lxc.stderr


def test_both_runtimes_commit_the_same_changes_to_the_same_layer(busybox, engine_home):
    made = {}
    for runtime in ("namespaces", "lxc"):
        engine.run(busybox, ["sh", "-c", CHANGE], runtime=runtime, name=f"by-{runtime}")
        made[runtime] = committing.commit(f"by-{runtime}", f"local/changed:{runtime}", created="2024-01-01T01:00:00Z")
    assert made["namespaces"].layer == made["lxc"].layer
    assert made["namespaces"].image.digest == made["lxc"].image.digest  # same layer, same config: the same image
    base = Store().image(busybox)
    top = made["lxc"].image.config
    assert top.chain_ids[-1] == chain_ids([*base.config.diff_ids, made["lxc"].layer.diff_id])[-1]


def test_next_config_appends_the_diff_id_and_a_history_entry():
    base = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]}, "created": "then",
                       "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
                       "history": [{"created": "then", "created_by": "ADD base"}]}).encode()
    config = ImageConfig.parse(committing.next_config(base, "sha256:" + "b" * 64, "sh -c true", "now", "why"))
    assert config.diff_ids == ("sha256:" + "a" * 64, "sha256:" + "b" * 64)
    assert [(h.created_by, h.created, h.comment) for h in config.history] == [
        ("ADD base", "then", None), ("sh -c true", "now", "why")]
    assert json.loads(config.raw)["created"] == "now" and config.cmd == ("sh",)


def test_commit_refuses_copy_mode_and_says_why(busybox, engine_home):
    engine.run(busybox, ["true"], mode="copy", name="copied")
    with pytest.raises(ContainerError, match="copy mode: its root is a whole private copy with no upper dir"):
        committing.commit("copied", "local/copied:1")
    refused = lxclab("commit", "copied", "local/copied:1")
    assert refused.returncode == 1 and "commit needs overlay mode" in refused.stderr
    absent = lxclab("commit", "nobody-here", "local/x:1")
    assert absent.returncode == 1 and "no container 'nobody-here'" in absent.stderr
    gc.rm("copied")
