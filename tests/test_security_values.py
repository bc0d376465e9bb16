"""Config injection: every value that reaches an LXC config key, a file name or a process is checked.

An image config pushed to the real classroom registry with a newline in a field is refused
at pull time, before anything is recorded or run; CLI inputs are checked the same way; and
the LXC layer refuses a value with a newline whatever its caller checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_process import lxclab
from fixture_engine import busybox, engine_home  # noqa: F401
from fixture_images import push_image, random_image, unique_repository

from lxclab import validation
from lxclab.engine import containers
from lxclab.engine.pull import pull
from lxclab.errors import InvalidImageConfig, InvalidValue, LxcError
from lxclab.lxc import Container as LxcContainer
from lxclab.manifest import ImageConfig
from lxclab.store import Store


def hook(marker: Path) -> str:
    """A config line that would run a shell as root on the host if it ever reached liblxc's config file."""
    return f"lxc.hook.destroy = /bin/sh -c 'touch {marker}'"


def config_with(run: dict) -> bytes:
    """A minimal image config with these run settings."""
    return json.dumps({"architecture": "amd64", "os": "linux", "config": run,
                       "rootfs": {"type": "layers", "diff_ids": []}}).encode()


@pytest.mark.parametrize(("check", "good", "cleaned"), [
    (validation.container_name, "web-1.a_b", "web-1.a_b"),
    (validation.hostname, "lab-box.example", "lab-box.example"),
    (validation.working_dir, "/opt/lab/", "/opt/lab"),
    (validation.working_dir, "", "/"),
    (validation.working_dir, "/", "/"),
    (validation.user, "1000:1000", "1000:1000"),
    (validation.user, "nobody:nogroup", "nobody:nogroup"),
    (validation.env_entry, "LAB=a b=c", ("LAB", "a b=c")),
])
def test_good_values_pass_cleaned(check, good, cleaned):
    assert check(good) == cleaned


@pytest.mark.parametrize(("check", "bad", "message"), [
    (validation.container_name, "a\nb", "invalid container name"),
    (validation.container_name, "-web", "invalid container name"),
    (validation.container_name, "a/b", "invalid container name"),
    (validation.container_name, "x" * 65, "invalid container name"),
    (validation.hostname, "box\nlxc.hook.stop = x", "control character"),
    (validation.hostname, "a_b", "invalid host name"),
    (validation.hostname, "x" * 65, "invalid host name"),
    (validation.working_dir, "/\nlxc.hook.destroy = x", "control character '\\\\n'"),
    (validation.working_dir, "opt/lab", "not a clean absolute path"),
    (validation.working_dir, "/opt/../etc", "not a clean absolute path"),
    (validation.working_dir, "/opt//lab", "not a clean absolute path"),
    (validation.working_dir, "/./x", "not a clean absolute path"),
    (validation.user, "root\n", "control character"),
    (validation.user, "root:wheel:x", "not user\\[:group\\]"),
    (validation.user, "../x", "not user\\[:group\\]"),
    (validation.env_entry, "A=b\nlxc.hook.stop = x", "control character"),
    (validation.env_entry, "NOEQUALS", "not KEY=value"),
    (validation.env_entry, "=value", "not KEY=value"),
    (validation.env_entry, "A B=c", "not KEY=value"),
])
def test_bad_values_are_refused_by_name(check, bad, message):
    with pytest.raises(InvalidValue, match=message):
        check(bad)


@pytest.mark.parametrize(("field", "value"), [
    ("WorkingDir", "/\nHOOK"),
    ("User", "root\nHOOK"),
    ("Env", ["A=1\nHOOK"]),
    ("Env", "A=1"),
    ("Cmd", ["sh", "a\x00b"]),
    ("Entrypoint", "sh -c x"),
    ("WorkingDir", "relative/dir"),
])
def test_a_config_with_a_bad_run_field_is_refused_by_name(field, value, tmp_path):
    value = json.loads(json.dumps(value).replace("HOOK", hook(tmp_path / "ran")))
    with pytest.raises(InvalidImageConfig, match=f"image config refused: {field}"):
        ImageConfig.parse(config_with({field: value}))


def test_the_config_keeps_clean_values(tmp_path):
    config = ImageConfig.parse(config_with({"WorkingDir": "/opt/lab/", "User": "1000", "Env": ["A=1"],
                                            "Cmd": ["sh"]}))
    assert (config.working_dir, config.user, config.env, config.cmd) == ("/opt/lab", "1000", ("A=1",), ("sh",))


@pytest.mark.parametrize("field", ["WorkingDir", "Env", "User"])
def test_an_injecting_image_on_the_real_registry_is_refused_at_pull_and_nothing_runs(
        classroom, lxclab_home, tmp_path, field):
    marker = tmp_path / "hook-ran"
    image = random_image(layer_sizes=(1000,))
    config = json.loads(image.config)
    config["config"] = {"Cmd": ["sh"], "Env": ["PATH=/bin"],
                        field: {"WorkingDir": f"/\n{hook(marker)}", "User": f"root\n{hook(marker)}",
                                "Env": [f"A=1\n{hook(marker)}"]}[field]}
    image = rebuilt_with_config(image, json.dumps(config).encode())
    repository = unique_repository("lab/inject")
    push_image(classroom.registry_host, classroom.teacher, repository, "1", image)
    with pytest.raises(InvalidImageConfig, match=f"image config refused: {field}"):
        pull(f"{classroom.registry_host}/{repository}:1")
    assert Store().images() == []
    assert not marker.exists()


def rebuilt_with_config(image, config: bytes):
    """The same random image with another config (its manifest rewritten to point at it)."""
    from lxclab.manifest import sha256_digest

    manifest = json.loads(image.manifest)
    manifest["config"] = {**manifest["config"], "digest": sha256_digest(config), "size": len(config)}
    image.config, image.manifest = config, json.dumps(manifest).encode()
    return image


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--name", "web\nlxc.hook.stop = HOOK", "invalid container name"),
    ("--hostname", "box\nlxc.hook.stop = HOOK", "host name"),
    ("--env", "A=1\nlxc.hook.stop = HOOK", "--env"),
    ("--env", "NOVALUE", "--env"),
])
@pytest.mark.parametrize("runtime", ["namespaces", "lxc"])
def test_cli_inputs_are_checked_before_anything_is_recorded(busybox, engine_home, tmp_path, option, value, message,
                                                             runtime):
    marker = tmp_path / "hook-ran"
    done = lxclab("run", "--rm", "--runtime", runtime, option, value.replace("HOOK", f"touch {marker}"), busybox,
                  "true")
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
    assert containers.containers() == [] and not marker.exists()


def test_the_lxc_layer_refuses_a_newline_whatever_its_caller_checked(lxcpath, tmp_path):
    marker = tmp_path / "hook-ran"
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    for field in ({"working_dir": f"/\n{hook(marker)}"}, {"env": [f"A=1\n{hook(marker)}"]},
                  {"hostname": f"box\n{hook(marker)}"}):
        with pytest.raises(LxcError, match="control character"):
            LxcContainer.create("injected", rootfs, cmd=["true"], lxcpath=lxcpath, **field)
        box = LxcContainer("injected", lxcpath)
        assert not box.defined
    assert not marker.exists()


def test_two_runs_given_one_name_never_both_get_it(busybox, engine_home):
    import threading

    from lxclab.engine.create import create
    from lxclab.errors import ContainerError
    from lxclab.footprint import release

    barrier, results = threading.Barrier(6), []

    def attempt() -> None:
        barrier.wait()
        try:
            create(busybox, ["true"], name="twin")
            results.append("created")
        except ContainerError as exc:
            assert "the name 'twin' is in use" in str(exc)
            results.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["created"] + ["refused"] * 5
    [twin] = [c for c in containers.containers() if c.name == "twin"]
    release(twin.state.footprint)  # created, never started: its record is all there is


def test_privileged_lxc_containers_run_without_an_apparmor_profile_as_dockers_do():
    from lxclab.security import Profile, lxckeys

    assert ("lxc.apparmor.profile", "unconfined") in lxckeys.keys(Profile.unconfined(), "/seccomp")
    assert not [key for key, _ in lxckeys.keys(Profile(), "/seccomp") if key == "lxc.apparmor.profile"]
