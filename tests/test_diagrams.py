"""Diagrams drawn from real objects: the recorded Docker Hub token dance, the seed image's tree read from its
OCI layout, and the namespaces of a real process started in new namespaces; checked through the figures'
texts, arrows and boxes, and through the SVG that Jupyter shows."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from fixture_lessons import DOCKERHUB

from lxclab import namespaces
from lxclab.classroom.ocilayout import OciLayout
from lxclab.container_init import KINDS
from lxclab.manifest import Index, Manifest, parse_manifest
from lxclab.registry import parse_challenge
from lxclab.widgets import diagrams
from lxclab.widgets.figures import svg


def interactions(name: str) -> list[dict]:
    """The request/response pairs of one recorded Docker Hub exchange."""
    return yaml.safe_load((DOCKERHUB / name).read_text())["interactions"]


def the_axes(figure: Figure) -> Axes:
    """The diagram's one Axes."""
    (axes,) = figure.axes
    return axes


def arrows(figure: Figure) -> list[tuple[float, float, str]]:
    """Each arrow of a sequence chart as (from column, to column, request or answer), top to bottom."""
    found = [a for a in the_axes(figure).texts if isinstance(a, Annotation)]
    return [(a.xyann[0], a.xy[0], a.get_gid()) for a in sorted(found, key=lambda a: a.xy[1])]


def labels(figure: Figure) -> list[str]:
    """Every text of the diagram that is not an arrow, top to bottom."""
    texts = [t for t in the_axes(figure).texts if not isinstance(t, Annotation)]
    return [t.get_text() for t in sorted(texts, key=lambda t: t.get_position()[1])]


def boxes(figure: Figure) -> dict[str, str]:
    """Each box's id and the text written in it."""
    return {t.get_gid().removesuffix("-text"): t.get_text() for t in the_axes(figure).texts
            if (t.get_gid() or "").endswith("-text")}


# --- token flow -------------------------------------------------------------------------------
def test_token_flow_draws_every_recorded_request_and_answer_between_the_right_columns():
    recorded = interactions("recording-GetManifest-success-0.yaml")
    figure = diagrams.token_flow(recorded)
    client, registry, token_server = 0, 1, 2
    assert arrows(figure) == [(client, registry, "request"), (registry, client, "answer"),
                              (client, token_server, "request"), (token_server, client, "answer"),
                              (client, registry, "request"), (registry, client, "answer")]
    hosts = [urlsplit(exchange["request"]["url"]).netloc for exchange in recorded]
    assert boxes(figure) == {"column-0": "client", "column-1": f"registry\n{hosts[0]}",
                             "column-2": f"token server\n{hosts[1]}"}
    said = labels(figure)[3:]  # after the three column heads, the messages in order
    challenge = parse_challenge(recorded[0]["response"]["headers"]["Www-Authenticate"][0])
    assert said[0] == "GET /v2/"
    assert said[1].splitlines() == ["401 + WWW-Authenticate: Bearer", f"realm={challenge.realm}",
                                    f"service={challenge.service}"]
    token_request = urlsplit(recorded[1]["request"]["url"])
    assert said[2].splitlines() == [f"GET {token_request.path}"] + [f"{k}={v}" for k, v in parse_qsl(token_request.query)]
    assert said[3] == "200 token (JWT, expires_in 300 s)"
    assert said[4].splitlines() == ["GET /v2/library/busybox/manifests/latest", "Authorization: Bearer …"]
    digest = recorded[2]["response"]["headers"]["Docker-Content-Digest"][0]
    assert said[5].splitlines() == ["200 Docker manifest list", f"Docker-Content-Digest: {digest[:19]}…"]
    assert figure.get_suptitle() == f"token flow: 3 requests, {hosts[0]}, {hosts[1]}"


def test_token_flow_shows_a_refusal_and_only_the_hosts_a_challenge_named_as_token_servers():
    messages = diagrams.token_flow_messages(interactions("recording-GetManifest-not-found-0.yaml"))
    assert [(m.sender, m.receiver) for m in messages][2:4] == [("client", "token server"), ("token server", "client")]
    assert messages[-1].label.startswith("404") and messages[-2].receiver == "registry"
    ping_only = diagrams.token_flow_messages(interactions("recording-detectProperties-docker.io-0.yaml"))
    assert [m.receiver for m in ping_only] == ["registry", "client"]


# --- image tree -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed_image(seed_layout: Path) -> tuple[Index, list[Manifest]]:
    """The seed index of lab/busybox:latest and the manifests it names, read from the seed's OCI layout."""
    layout = OciLayout(seed_layout)
    index = parse_manifest(layout.read_blob(layout.refs()["lab/busybox:latest"].digest))
    return index, [parse_manifest(layout.read_blob(d.digest)) for d in index.manifests if not d.is_attestation]


def test_image_tree_shows_index_manifests_config_and_layers_with_short_types_digests_and_sizes(seed_image):
    index, manifests = seed_image
    shown = boxes(diagrams.image_tree(index, manifests))
    size = diagrams.short_size
    assert shown["index"] == f"OCI index\n{index.digest[:19]}…\n{size(len(index.raw))}"
    for descriptor, image in zip(index.manifests, manifests):
        platform = str(descriptor.platform)
        assert shown[f"manifest-{platform}"] == f"{platform}\nOCI manifest\n{descriptor.digest[:19]}…\n{size(descriptor.size)}"
        assert shown[f"config-{platform}"] == f"config: OCI config\n{image.config.digest[:19]}…\n{size(image.config.size)}"
        for number, layer in enumerate(image.layers, 1):
            text = shown[f"layer-{number}-{platform}"]
            assert text.startswith(f"layer {number}: layer tar+gzip\n{layer.digest[:19]}…\n{size(layer.size)}")
            shared = all(layer in other.layers for other in manifests)
            assert text.endswith(" · shared") == shared
    assert len(shown) == 1 + sum(2 + len(image.layers) for image in manifests)
    assert [n for n in shown if n.startswith("layer") and shown[n].endswith("shared")]  # lab/busybox shares some


def test_image_tree_says_which_platforms_were_not_fetched(seed_image):
    index, manifests = seed_image
    figure = diagrams.image_tree(index, manifests[:1])
    shown = boxes(figure)
    second = str(index.manifests[1].platform)
    assert shown[f"manifest-{second}"].endswith("(not fetched)") and f"config-{second}" not in shown
    assert not any(text.endswith("shared") for text in shown.values())  # nothing is shared with a platform not fetched
    assert figure.get_suptitle().endswith("2 platforms, 1 fetched")


@pytest.mark.parametrize("size, text", [(517, "517 B"), (2048, "2 KiB"), (1_034_000, "1010 KiB"), (1_500_000, "1.43 MiB")])
def test_sizes_are_short(size, text):
    assert diagrams.short_size(size) == text


# --- namespaces -------------------------------------------------------------------------------
def test_namespace_map_joins_the_shared_namespaces_of_a_real_process_and_highlights_its_new_ones(busybox_rootfs):
    host = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in KINDS}
    process = namespaces.spawn(busybox_rootfs, ["sleep", "30"], namespaces={"pid", "uts", "net"})
    try:
        ids = process.namespace_ids()
    finally:
        process.kill()
        process.wait()
    figure = diagrams.namespace_map(host, ids)
    shown = boxes(figure)
    for kind in ("net", "pid", "uts"):
        assert shown[f"{kind}-notebook"] == f"{kind} [{diagrams.namespace_number(host[kind])}]"
        assert shown[f"{kind}-container"] == f"{kind} [{diagrams.namespace_number(ids[kind])}]\nnew"
        assert ids[kind] != host[kind]
    for kind in ("cgroup", "ipc", "mnt", "user"):
        assert shown[f"{kind}-shared"] == f"{kind} [{diagrams.namespace_number(host[kind])}]\nshared"
    patches = {p.get_gid(): p.get_facecolor() for p in the_axes(figure).patches}
    assert patches["pid-container"] != patches["pid-notebook"] != patches["ipc-shared"]
    assert figure.get_suptitle() == "namespaces: 3 new of 7 (net, pid, uts), the rest shared"
    without_numbers = boxes(diagrams.namespace_map(host, ids, numbers=False))
    assert without_numbers["pid-container"] == "pid\nnew" and without_numbers["ipc-shared"] == "ipc\nshared"


# --- shown as SVG -----------------------------------------------------------------------------
def test_a_shown_diagram_is_the_same_svg_every_time_with_its_texts_and_a_title_as_text(tmp_path):
    recorded = interactions("recording-GetManifest-success-0.yaml")
    picture = diagrams.show(diagrams.token_flow(recorded))
    text = picture._repr_svg_()
    assert text == svg(diagrams.token_flow(recorded))
    tree = ET.fromstring(text)
    assert "realm=https://auth.docker.io/token" in list(tree.itertext())
    assert repr(picture) == "token flow: 3 requests, registry-1.docker.io, auth.docker.io"
    assert picture.save(tmp_path / "flow.png").read_bytes()[:4] == b"\x89PNG"
