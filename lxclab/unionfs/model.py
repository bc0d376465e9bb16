"""A pure model of a layer stack: which layer provides each path, what it shadows, what whiteouts hide.

Built from the entries of each layer (lxclab.layers.read_entries), bottom layer first,
with the same rules extraction follows: opaque markers, then whiteouts (both resolved
through the symlinks below, as extraction resolves them), then the layer's own entries;
a directory over a directory merges, anything else replaces. No I/O.

Efficiency, in the manner of dive: every byte of every regular file in every layer is
downloaded and stored, but only the bytes visible in the merged tree are of use. Wasted
bytes are the difference (files overwritten by a later layer, or deleted by a whiteout);
the efficiency score is visible bytes / stored bytes (1.0 for an image that wastes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import UnsafeLayerEntry
from ..layers.entries import DIRECTORY, FILE, HARDLINK, OPAQUE, SYMLINK, WHITEOUT, LayerEntry
from ..layers.names import depth, hidden, is_under, parents, rebase, resolve_links, resolve_markers

ADDED, MODIFIED, DELETED = "added", "modified", "deleted"
ROOT_ENTRY = LayerEntry("", DIRECTORY, mode=0o755)


@dataclass(frozen=True)
class Version:
    """One layer's version of a path."""

    layer: int
    entry: LayerEntry


@dataclass
class Node:
    """One path of the merged tree: the entry shown there, the layer it comes from, what it shadows."""

    path: str
    entry: LayerEntry
    layer: int
    shadows: list[Version] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The last component of the path ('/' for the root)."""
        return self.path.rpartition("/")[2] or "/"


@dataclass
class Hidden:
    """A path no longer in the merged tree: which layer removed it, how, and the versions it had."""

    path: str
    layer: int
    how: str
    versions: list[Version]


@dataclass
class LayerChanges:
    """What one layer did to the merged tree: paths added, modified and deleted, with byte counts."""

    index: int
    diff_id: str = ""
    created_by: str = ""
    size: int = 0
    entries: int = 0
    whiteouts: list[str] = field(default_factory=list)
    opaques: list[str] = field(default_factory=list)
    changes: list[tuple[str, str, int]] = field(default_factory=list)

    def count(self, what: str) -> int:
        """How many paths this layer added, modified or deleted."""
        return sum(1 for _, kind, _ in self.changes if kind == what)

    def bytes(self, what: str) -> int:
        """How many file bytes this layer added, modified or deleted."""
        return sum(size for _, kind, size in self.changes if kind == what)


def _size(entry: LayerEntry) -> int:
    return entry.size if entry.kind == FILE else 0


class LayerStack:
    """The merged view of a stack of layers, built one layer at a time, bottom first."""

    def __init__(self) -> None:
        self.tree: dict[str, Node] = {"": Node("", ROOT_ENTRY, -1)}
        self.children_of: dict[str, set[str]] = {"": set()}
        self.hidden: dict[str, Hidden] = {}
        self.layers: list[LayerChanges] = []

    @classmethod
    def build(cls, layers: list[list[LayerEntry]], diff_ids: list[str] | None = None,
              created_by: list[str] | None = None) -> LayerStack:
        """A stack from each layer's entries (bottom first), with optional DiffIDs and history lines."""
        stack = cls()
        for index, entries in enumerate(layers):
            stack.add_layer(entries, (diff_ids or [""] * len(layers))[index],
                            (created_by or [""] * len(layers))[index])
        return stack

    def add_layer(self, entries: list[LayerEntry], diff_id: str = "", created_by: str = "") -> LayerChanges:
        """Put one more layer on top; returns what it changed."""
        changes = LayerChanges(len(self.layers), diff_id, created_by)
        changes.size = sum(_size(e) for e in entries)
        changes.entries = sum(1 for e in entries if not e.is_marker)
        own, implied = _own_view(entries, changes)
        self.layers.append(changes)
        resolve_markers(changes.whiteouts, changes.opaques, lambda here: self._marker_link(here, own, implied, changes),
                        str(changes.index))
        for rel in changes.opaques:
            if rel in self.tree and self.tree[rel].entry.is_dir:
                for child in sorted(self.children_of.get(rel, ())):
                    self._remove(f"{rel}/{child}" if rel else child, changes, OPAQUE)
        for rel in sorted(set(changes.whiteouts), key=depth):
            if rel in self.tree:
                self._remove(rel, changes, WHITEOUT)
        self._follow_lower_symlinks(own, implied, changes)
        for rel in sorted(own, key=lambda p: (depth(p), p)):
            self._place(own[rel], rel in implied, changes)
        return changes

    def node(self, path: str) -> Node | None:
        """The merged tree's node at a path ('' is the root), or None."""
        return self.tree.get(path)

    def children(self, path: str = "") -> list[Node]:
        """The nodes directly inside a directory of the merged tree, by name."""
        return [self.tree[f"{path}/{n}" if path else n] for n in sorted(self.children_of.get(path, ()))]

    def hidden_in(self, path: str = "") -> list[Hidden]:
        """Paths directly inside a directory that a layer removed (whiteout, opaque or replacement)."""
        return sorted((h for h in self.hidden.values() if h.path.rpartition("/")[0] == path), key=lambda h: h.path)

    @property
    def stored_bytes(self) -> int:
        """Bytes of regular files in all layers together: what is downloaded and stored."""
        return sum(layer.size for layer in self.layers)

    @property
    def visible_bytes(self) -> int:
        """Bytes of regular files in the merged tree (hardlinks counted once)."""
        return sum(_size(node.entry) for node in self.tree.values())

    @property
    def wasted_bytes(self) -> int:
        """Stored bytes that the merged tree does not show: overwritten or deleted files."""
        return self.stored_bytes - self.visible_bytes

    @property
    def efficiency(self) -> float:
        """Visible bytes / stored bytes: 1.0 when no layer overwrites or deletes a file of another."""
        return self.visible_bytes / self.stored_bytes if self.stored_bytes else 1.0

    def waste(self) -> list[tuple[str, int]]:
        """Each path that wastes bytes and how many, largest first."""
        wasted = {n.path: sum(_size(v.entry) for v in n.shadows) for n in self.tree.values()}
        for h in self.hidden.values():
            wasted[h.path] = wasted.get(h.path, 0) + sum(_size(v.entry) for v in h.versions)
        return sorted(((p, b) for p, b in wasted.items() if b), key=lambda item: (-item[1], item[0]))

    def _follow_lower_symlinks(self, own: dict[str, LayerEntry], implied: set[str], changes: LayerChanges) -> None:
        """Move the entries under an implied directory that is a symlink below to where it leads (as extraction)."""
        pending = sorted(implied, key=depth, reverse=True)
        while pending:
            rel = pending.pop()
            if rel not in implied or self._link_at(rel, own, implied) is None:
                continue
            dest = resolve_links(rel, lambda here, _: self._link_at(here, own, implied), str(changes.index), rel)
            for path in sorted((p for p in own if is_under(p, rel)), key=depth):
                _move_entry(own, implied, path, rebase(path, rel, dest))
            for parent in [p for p in parents(dest) if p not in own]:
                own[parent] = LayerEntry(parent, DIRECTORY, mode=0o755)
                implied.add(parent)
            pending.extend(p for p in implied if is_under(p, dest) and p != dest)

    def _link_at(self, path: str, own: dict[str, LayerEntry], implied: set[str]) -> str | None:
        """The target of the symlink the merged tree shows at `path` once this layer is on top, else None."""
        entry = own.get(path) if path not in implied else None
        entry = entry or (self.tree[path].entry if path in self.tree else None)
        if entry is not None and entry.kind == HARDLINK and entry.target in self.tree:
            entry = self.tree[entry.target].entry  # a hardlink to a symlink is that symlink
        return entry.target if entry is not None and entry.kind == SYMLINK else None

    def _marker_link(self, path: str, own: dict[str, LayerEntry], implied: set[str], changes: LayerChanges) -> str | None:
        """The target of a symlink below at `path` that this layer neither lists nor hides (what markers follow)."""
        if (path in own and path not in implied) or hidden(path, changes.whiteouts, changes.opaques):
            return None
        return self._link_at(path, {}, set())

    def _remove(self, path: str, changes: LayerChanges, how: str) -> None:
        for rel in self._subtree(path):
            node = self.tree.pop(rel)
            self.children_of.pop(rel, None)
            self.hidden[rel] = Hidden(rel, changes.index, how, [Version(node.layer, node.entry)] + node.shadows)
            changes.changes.append((rel, DELETED, _size(node.entry)))
        parent, _, name = path.rpartition("/")
        self.children_of[parent].discard(name)

    def _subtree(self, path: str) -> list[str]:
        found, pending = [], [path]
        while pending:
            rel = pending.pop()
            found.append(rel)
            pending.extend(f"{rel}/{c}" if rel else c for c in self.children_of.get(rel, ()))
        return found

    def _place(self, entry: LayerEntry, implied: bool, changes: LayerChanges) -> None:
        old = self.tree.get(entry.path)
        if old is not None and old.entry.is_dir and entry.is_dir:
            if not implied:
                self.tree[entry.path] = Node(entry.path, entry, changes.index, [Version(old.layer, old.entry)] + old.shadows)
            return
        if old is not None and old.entry.is_dir:
            for child in sorted(self.children_of.get(entry.path, ())):
                self._remove(f"{entry.path}/{child}", changes, "replaced")
        shadows = [Version(old.layer, old.entry)] + old.shadows if old else []
        self.hidden.pop(entry.path, None)
        self.tree[entry.path] = Node(entry.path, entry, changes.index, shadows)
        parent, _, name = entry.path.rpartition("/")
        self.children_of[parent].add(name)
        if entry.is_dir:
            self.children_of.setdefault(entry.path, set())
        changes.changes.append((entry.path, MODIFIED if old else ADDED, _size(entry)))


def _own_view(entries: list[LayerEntry], changes: LayerChanges) -> tuple[dict[str, LayerEntry], set[str]]:
    """A layer's entries as they end up after its own tar order (later wins), with implied directories."""
    own: dict[str, LayerEntry] = {}
    implied: set[str] = set()
    for entry in entries:
        if entry.kind == WHITEOUT:
            changes.whiteouts.append(entry.path)
            continue
        if entry.kind == OPAQUE:
            changes.opaques.append(entry.path)
            continue
        for parent in parents(entry.path):
            if parent in own and not own[parent].is_dir:
                raise UnsafeLayerEntry(f"layer {changes.index}: entry {entry.path!r} refused: its parent "
                                       f"{parent!r} is a {own[parent].kind} in this layer")
            if parent not in own:
                own[parent] = LayerEntry(parent, DIRECTORY, mode=0o755)
                implied.add(parent)
        old = own.get(entry.path)
        if old is not None and not (old.is_dir and entry.is_dir):
            for rel in [p for p in own if p.startswith(entry.path + "/")]:
                del own[rel]
                implied.discard(rel)
        own[entry.path] = entry
        implied.discard(entry.path)
    own.pop("", None)
    return own, implied


def _move_entry(own: dict[str, LayerEntry], implied: set[str], old: str, new: str) -> None:
    """Re-path one of a layer's entries; an implied directory gives way to what the layer lists there."""
    entry, was_implied = own.pop(old), old in implied
    implied.discard(old)
    if new == "" or (new in own and (was_implied or new not in implied)):
        return
    own[new] = replace(entry, path=new)
    if was_implied:
        implied.add(new)
    else:
        implied.discard(new)
