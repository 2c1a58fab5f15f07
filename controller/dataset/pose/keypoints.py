"""The keypoint set of SyncRig's 2D/3D pose (the one home of names, groups and skeleton edges).

MediaPipe Holistic's layout, in this order: body (33 BlazePose landmarks), left hand (21), right
hand (21), face (478 = 468 mesh + 10 iris points). "left"/"right" are the subject's sides, as in
MediaPipe. The pose worker (pose/worker.py, which runs in its own virtualenv and imports nothing
from here) emits the groups in the same order and sizes; the parent checks the sizes it reports.
"""

from __future__ import annotations

from dataclasses import dataclass

BODY = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
HAND = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_finger_mcp",
    "index_finger_pip", "index_finger_dip", "index_finger_tip", "middle_finger_mcp",
    "middle_finger_pip", "middle_finger_dip", "middle_finger_tip", "ring_finger_mcp",
    "ring_finger_pip", "ring_finger_dip", "ring_finger_tip", "pinky_mcp", "pinky_pip", "pinky_dip",
    "pinky_tip",
)  # fmt: skip
FACE_POINTS = 478

BODY_EDGES = (
    (0, 1), (0, 4), (1, 2), (2, 3), (3, 7), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
    (11, 23), (12, 14), (12, 24), (13, 15), (14, 16), (15, 17), (15, 19), (15, 21), (16, 18),
    (16, 20), (16, 22), (17, 19), (18, 20), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (27, 31), (28, 30), (28, 32), (29, 31), (30, 32),
)  # fmt: skip
HAND_EDGES = (
    (0, 1), (0, 5), (0, 17), (1, 2), (2, 3), (3, 4), (5, 6), (5, 9), (6, 7), (7, 8), (9, 10),
    (9, 13), (10, 11), (11, 12), (13, 14), (13, 17), (14, 15), (15, 16), (17, 18), (18, 19), (19, 20),
)  # fmt: skip
# Edges that keep their length while the body moves (along one bone, or across the skull): the
# sequence triangulation holds these constant; the others (mouth corners, finger tips of the body
# model, thumb) join points whose distance changes and are drawn, never constrained.
BODY_RIGID = (
    (0, 1), (0, 4), (1, 2), (2, 3), (3, 7), (4, 5), (5, 6), (6, 8), (11, 12), (11, 13), (11, 23),
    (12, 14), (12, 24), (13, 15), (14, 16), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (27, 31), (28, 30), (28, 32), (29, 31), (30, 32),
)  # fmt: skip
MAIN_JOINTS = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip


@dataclass(frozen=True)
class KeypointGroup:
    name: str
    names: tuple[str, ...]  # full keypoint names (unique across groups)
    edges: tuple[tuple[int, int], ...]  # indices within the group
    rigid: tuple[tuple[int, int], ...] = ()  # the edges whose length is constant (a subset of edges)

    def __len__(self) -> int:
        return len(self.names)


GROUPS = (
    KeypointGroup("body", BODY, BODY_EDGES, BODY_RIGID),
    # Every hand edge is a phalanx or a metacarpal: all rigid.
    KeypointGroup("left_hand", tuple(f"left_hand_{n}" for n in HAND), HAND_EDGES, HAND_EDGES),
    KeypointGroup("right_hand", tuple(f"right_hand_{n}" for n in HAND), HAND_EDGES, HAND_EDGES),
    # Face mesh edges are left out: 478 nodes do not fit NWB Skeleton's uint8 edge indices, and
    # the mesh triangulation is a rendering aid, not anatomy.
    KeypointGroup("face", tuple(f"face_{i:03d}" for i in range(FACE_POINTS)), ()),
)
GROUP_NAMES = tuple(g.name for g in GROUPS)
KEYPOINT_NAMES = tuple(n for g in GROUPS for n in g.names)


def group_slices(groups: tuple[KeypointGroup, ...] = GROUPS) -> dict[str, slice]:
    """Group name → slice into the keypoint axis."""
    out, start = {}, 0
    for g in groups:
        out[g.name] = slice(start, start + len(g))
        start += len(g)
    return out


def group_of(names: list[str] | tuple[str, ...]) -> dict[str, list[int]]:
    """For any keypoint-name list (e.g. read from a file): group name → indices in that list, in the
    GROUPS order; names outside every group go to "other". Another tool's keypoint set (any name
    not SyncRig's, e.g. a mouse's "snout" beside "left_ear") is one group, "other", as a whole:
    a name it shares with MediaPipe's set does not make that keypoint part of a human body."""
    lookup = {n: g.name for g in GROUPS for n in g.names}
    if not all(n in lookup for n in names):
        return {"other": list(range(len(names)))} if len(names) else {}
    out: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        out.setdefault(lookup.get(n, "other"), []).append(i)
    return {g: out[g] for g in [*GROUP_NAMES, "other"] if g in out}


@dataclass(frozen=True)
class Skeleton:
    """Edges of any keypoint list, as indices into it, and which of them are rigid."""

    edges: tuple[tuple[int, int], ...]
    rigid: tuple[tuple[int, int], ...]


def declared_skeleton(meta: dict | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A source's own skeleton from its 2D metadata, as (edges, rigid) name pairs. Two forms are
    read: a list of [name, name] edges (what `pose --import` writes from DeepLabCut/SLEAP; no edge
    declared rigid) or {"edges": [...], "rigid": [...]}."""
    declared = (meta or {}).get("skeleton") or []
    if isinstance(declared, dict):
        edges, rigid = declared.get("edges", []), declared.get("rigid", [])
    else:
        edges, rigid = declared, []
    return [(str(a), str(b)) for a, b in edges], [(str(a), str(b)) for a, b in rigid]


def skeleton_of(names: list[str] | tuple[str, ...], meta: dict | None = None) -> Skeleton:
    """The skeleton of a keypoint list: the source's own when its 2D metadata carries one
    (`meta["skeleton"] = {"edges": [[name, name], ...], "rigid": [[name, name], ...]}`, e.g. a
    DeepLabCut/SLEAP import: rigid only where the user declared it), else keypoints.py's groups for
    the names they know. Edges naming a keypoint not in the list are left out."""
    index = {n: i for i, n in enumerate(names)}

    def pairs(items) -> tuple[tuple[int, int], ...]:
        return tuple((index[a], index[b]) for a, b in items if a in index and b in index and a != b)

    declared_edges, declared_rigid = declared_skeleton(meta)
    if declared_edges:
        edges = pairs(declared_edges)
        rigid = tuple(e for e in pairs(declared_rigid) if e in set(edges) or e[::-1] in set(edges))
        return Skeleton(edges, rigid)
    edges, rigid = [], []
    for g in GROUPS:
        edges += pairs((g.names[a], g.names[b]) for a, b in g.edges)
        rigid += pairs((g.names[a], g.names[b]) for a, b in g.rigid)
    return Skeleton(tuple(edges), tuple(rigid))


def mirror_pairs(names: list[str] | tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs of keypoints whose names differ only in left ↔ right (any keypoint
    set: "left_elbow"/"right_elbow", "leftEar"/"rightEar", "LeftPaw"/"RightPaw")."""
    index = {n: i for i, n in enumerate(names)}
    out = []
    for n, i in index.items():
        for left, right in (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT")):
            if left in n:
                j = index.get(n.replace(left, right))
                if j is not None and j != i:
                    out.append((i, j))
                break
    return tuple(out)
