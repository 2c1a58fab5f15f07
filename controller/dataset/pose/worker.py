"""2D pose worker: runs inside the pose side environment (pose/env.py) as a child process of
`syncrig pose`; imports nothing from SyncRig (the side environment has numpy<2, not SyncRig).

Protocol over stdin/stdout (binary, little-endian):
- parent → worker: one JSON line {"width", "height", "static_image_mode"}; then per frame an int64
  tag (≥ 0) followed by width·height·3 bytes of RGB; tag −1 ends the stream.
- worker → parent: one JSON line describing the model (version, group sizes, groups that cannot
  run, how confidences are defined); then per frame the same int64 tag followed by K·3 float32
  (x px, y px, confidence), K = 33 + 21 + 21 + 478, NaN / 0 where a keypoint was not found.
Diagnostics go to stderr. `--check` loads every model on a blank image and exits (0 = usable).

Model: MediaPipe Holistic (legacy solutions, model_complexity=1: the only one whose model ships in
the 0.10.21 wheel), which tracks body, both hands and face in one graph. Confidences: body = the
landmark's visibility; a hand = the visibility of that side's pose wrist (the graph crops the hand
from it; hand landmarks carry no score of their own); the face = mean visibility of the pose's face
landmarks 0-10 (same reason). If Holistic cannot be built, Pose / Hands / FaceMesh run separately,
and any that cannot run is reported in "unavailable_groups" with its keypoints NaN / confidence 0.
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np

GROUP_SIZES = {"body": 33, "left_hand": 21, "right_hand": 21, "face": 478}
K = sum(GROUP_SIZES.values())
OFFSETS = {}
_o = 0
for _g, _n in GROUP_SIZES.items():
    OFFSETS[_g] = _o
    _o += _n
LEFT_WRIST, RIGHT_WRIST = 15, 16
CONFIDENCE = {
    "body": "MediaPipe pose landmark visibility",
    "left_hand": "visibility of the pose's left wrist (hand landmarks carry no score); 0 if no hand found",
    "right_hand": "visibility of the pose's right wrist (hand landmarks carry no score); 0 if no hand found",
    "face": "mean visibility of the pose's face landmarks 0-10 (face landmarks carry no score); 0 if no face",
}


def _fill(out: np.ndarray, group: str, landmarks, w: int, h: int, conf) -> None:
    if landmarks is None:
        return
    pts = landmarks.landmark
    n = min(len(pts), GROUP_SIZES[group])
    o = OFFSETS[group]
    arr = np.array([(p.x * w, p.y * h, p.visibility) for p in pts[:n]], dtype=np.float32)
    out[o : o + n, :2] = arr[:, :2]
    out[o : o + n, 2] = arr[:, 2] if conf is None else conf


class Estimator:
    def __init__(self, static: bool) -> None:
        import mediapipe as mp

        self.version = mp.__version__
        self.unavailable: list[str] = []
        self.errors: dict[str, str] = {}
        sol = mp.solutions
        self.holistic = None
        self.parts: dict[str, object] = {}
        try:
            self.holistic = sol.holistic.Holistic(
                static_image_mode=static,
                model_complexity=1,
                smooth_landmarks=False,
                refine_face_landmarks=True,
            )
            self.model = "mediapipe.solutions.holistic (pose_landmark_full, hand landmarks, face mesh + iris)"
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to the separate solutions
            self.errors["holistic"] = f"{type(exc).__name__}: {exc}"
            builders = {
                "body": lambda: sol.pose.Pose(
                    static_image_mode=static, model_complexity=1, smooth_landmarks=False
                ),
                "hands": lambda: sol.hands.Hands(
                    static_image_mode=static, max_num_hands=2, model_complexity=1
                ),
                "face": lambda: sol.face_mesh.FaceMesh(static_image_mode=static, refine_landmarks=True),
            }
            for name, build in builders.items():
                try:
                    self.parts[name] = build()
                except Exception as exc2:  # noqa: BLE001
                    self.errors[name] = f"{type(exc2).__name__}: {exc2}"
                    self.unavailable += ["left_hand", "right_hand"] if name == "hands" else [name]
            self.model = "mediapipe.solutions pose + hands + face_mesh (holistic unavailable)"

    def describe(self) -> dict:
        return {
            "model": self.model,
            "model_version": f"mediapipe {self.version}",
            "groups": GROUP_SIZES,
            "unavailable_groups": self.unavailable,
            "errors": self.errors,
            "confidence": CONFIDENCE,
        }

    def process(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        out = np.full((K, 3), np.nan, dtype=np.float32)
        out[:, 2] = 0.0
        if self.holistic is not None:
            r = self.holistic.process(rgb)
            _fill(out, "body", r.pose_landmarks, w, h, None)
            vis = out[OFFSETS["body"] : OFFSETS["body"] + 33, 2]
            _fill(out, "left_hand", r.left_hand_landmarks, w, h, vis[LEFT_WRIST])
            _fill(out, "right_hand", r.right_hand_landmarks, w, h, vis[RIGHT_WRIST])
            _fill(out, "face", r.face_landmarks, w, h, float(np.mean(vis[:11])))
            return out
        body = self.parts.get("body")
        vis = np.ones(33, np.float32)
        if body is not None:
            r = body.process(rgb)
            _fill(out, "body", r.pose_landmarks, w, h, None)
            vis = out[:33, 2]
        hands = self.parts.get("hands")
        if hands is not None:
            r = hands.process(rgb)
            for lm, hd in zip(r.multi_hand_landmarks or [], r.multi_handedness or [], strict=False):
                # Hands' label assumes a mirrored (selfie) image: "Left" is the subject's right hand.
                side = "right_hand" if hd.classification[0].label == "Left" else "left_hand"
                _fill(out, side, lm, w, h, float(hd.classification[0].score))
        face = self.parts.get("face")
        if face is not None:
            r = face.process(rgb)
            if r.multi_face_landmarks:
                _fill(out, "face", r.multi_face_landmarks[0], w, h, float(np.mean(vis[:11])))
        return out


def _read_exact(stream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def main() -> int:
    if "--check" in sys.argv:
        est = Estimator(static=True)
        est.process(np.zeros((256, 256, 3), np.uint8))
        info = est.describe()
        print(json.dumps(info))
        return 1 if "body" in info["unavailable_groups"] else 0
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    config = json.loads(stdin.readline())
    w, h = int(config["width"]), int(config["height"])
    est = Estimator(static=bool(config.get("static_image_mode", False)))
    stdout.write((json.dumps(est.describe()) + "\n").encode())
    stdout.flush()
    size = w * h * 3
    while True:
        try:
            (tag,) = struct.unpack("<q", _read_exact(stdin, 8))
        except EOFError:
            return 0
        if tag < 0:
            return 0
        rgb = np.frombuffer(_read_exact(stdin, size), dtype=np.uint8).reshape(h, w, 3)
        result = est.process(rgb)
        stdout.write(struct.pack("<q", tag) + result.astype("<f4").tobytes())
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
