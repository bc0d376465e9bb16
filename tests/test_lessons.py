"""needs_root: True for root with CAP_SYS_ADMIN; for nobody, or root without it, one plain line and False.

And the course pages the lessons link (the glossary, the instructor notes): every link lands on a heading.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lxclab import lessons
from lxclab.lessons import effective_capabilities, has_root, missing_root_message, needs_root

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
AS_ROOT_WITHOUT_SYS_ADMIN = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"]
ASK = "from lxclab.lessons import needs_root; print(needs_root('mount the layers', 'mount -t overlay ...'))"


def ask_as(prefix: list[str], python: str = sys.executable, env: dict[str, str] | None = None) -> list[str]:
    """The lines a child process prints when it asks needs_root, run by `python` under `prefix` (a setpriv command)."""
    done = subprocess.run([*prefix, python, "-c", ASK], capture_output=True, text=True, timeout=60, check=True, env=env)
    return done.stdout.splitlines()


def test_root_with_cap_sys_admin_may_run_the_step_and_hears_nothing(capsys):
    assert has_root()
    assert needs_root("mount the layers") is True
    assert capsys.readouterr().out == ""


def test_nobody_is_told_what_is_missing_and_what_the_step_would_do(nobody_python):
    assert ask_as(AS_NOBODY, nobody_python.python, nobody_python.env()) == [
        "This step needs root (CAP_SYS_ADMIN): mount the layers. "
        "On Binder you are not root; here is what it would do: mount -t overlay ...",
        "False",
    ]


def test_root_without_cap_sys_admin_cannot_run_the_step_either():
    lines = ask_as(AS_ROOT_WITHOUT_SYS_ADMIN)
    assert lines[-1] == "False" and lines[0].startswith("This step needs root (CAP_SYS_ADMIN): mount the layers.")


def test_a_step_may_name_the_capability_it_needs():
    ask = ("from lxclab.lessons import needs_root; "
           "print(needs_root('chroot into the image', capability='CAP_SYS_CHROOT'))")
    as_root_without_chroot = ["setpriv", "--inh-caps=-sys_chroot", "--bounding-set=-sys_chroot"]
    lines = subprocess.run([*as_root_without_chroot, sys.executable, "-c", ask], capture_output=True, text=True,
                           timeout=60, check=True).stdout.splitlines()
    assert lines == ["This step needs root (CAP_SYS_CHROOT): chroot into the image. "
                     "On Binder you are not root; here is what it would do:", "False"]
    assert has_root("CAP_SYS_CHROOT")  # this test process keeps every capability
    with pytest.raises(ValueError, match="unknown capability"):
        needs_root("dance", capability="CAP_DANCE")


def test_capabilities_come_from_the_capeff_line(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nCapInh:\t0000000000000000\nCapEff:\t0000000000200000\n")
    assert effective_capabilities(status) == 1 << 21


def test_the_message_without_a_plan_ends_where_the_lesson_shows_it():
    assert missing_root_message("create a cgroup").endswith("here is what it would do:")


def test_course_folder_looks_here_then_in_the_checkout_never_above(tmp_path, monkeypatch):
    (tmp_path / "data/dockerhub").mkdir(parents=True)
    (tmp_path / "data/dockerhub/hub.yaml").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert lessons.course_folder("data/dockerhub", holding="hub.yaml") == tmp_path / "data/dockerhub"
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert lessons.course_folder("data", "notebooks/data", holding="07-memory.json") == \
        lessons.CHECKOUT / "notebooks/data"
    with pytest.raises(FileNotFoundError, match="no data/dockerhub holding hub.yaml in .*or in the lxclab checkout"):
        lessons.course_folder("data/dockerhub", holding="hub.yaml")


NOTEBOOKS = lessons.CHECKOUT / "notebooks"
COURSE_PAGE_LINK = re.compile(r"\]\(((GLOSSARY|INSTRUCTOR-NOTES)\.md)(?:#([^)\s]*))?\)")


def heading_anchors(page: Path) -> set[str]:
    """The anchors of a markdown page's headings, as GitHub and JupyterLab make them from lowercase headings."""
    anchors = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return anchors


def course_page_links() -> list[tuple[str, str, str]]:
    """(where, page, anchor) for each link to the glossary or the instructor notes in the lessons and the talk."""
    found = []
    for notebook in [*sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")), lessons.CHECKOUT / "slides/lxclab-talk.ipynb"]:
        for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
            if cell.cell_type == "markdown":
                found += [(f"{notebook.name} cell {index}", page, anchor or "")
                          for page, _, anchor in COURSE_PAGE_LINK.findall(cell.source)]
    return found


def test_glossary_and_instructor_note_links_resolve_to_a_heading():
    links = course_page_links()
    assert sum(page == "GLOSSARY.md" for _, page, _ in links) >= 4, "the lessons should link the glossary"
    broken = [(where, f"{page}#{anchor}") for where, page, anchor in links
              if anchor and anchor not in heading_anchors(NOTEBOOKS / page)]
    assert broken == []


def test_the_glossary_defines_the_words_the_lessons_lean_on():
    anchors = heading_anchors(NOTEBOOKS / "GLOSSARY.md")
    for word in ("digest", "diffid", "chainid", "descriptor", "manifest", "index", "whiteout", "opaque-directory",
                 "copy-up", "scope", "realm", "namespace", "cgroup", "capability", "seccomp"):
        assert word in anchors, f"GLOSSARY.md has no heading for {word}"
    assert heading_anchors(NOTEBOOKS / "GLOSSARY.md") >= {"schema-1", "upper-directory", "pivot_root"}


def test_a_broken_anchor_is_caught(tmp_path):
    page = tmp_path / "GLOSSARY.md"
    page.write_text("# Glossary\n\n### opaque directory\ntext\n### pivot_root\n")
    assert heading_anchors(page) == {"glossary", "opaque-directory", "pivot_root"}
    assert COURSE_PAGE_LINK.findall("see [x](GLOSSARY.md#opaque-directory) and [y](INSTRUCTOR-NOTES.md)") == [
        ("GLOSSARY.md", "GLOSSARY", "opaque-directory"), ("INSTRUCTOR-NOTES.md", "INSTRUCTOR-NOTES", "")]
