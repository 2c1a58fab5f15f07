"""2D pose worker: runs inside the pose side environment (pose/env.py) as a child process of
`syncrig pose`; imports nothing from SyncRig (the side environment has numpy<2, not SyncRig).

Protocol over stdin/stdout (binary, little-endian):
- parent → worker: one JSON line {"width", "height", "static_image_mode"} (plus, for the ONNX
  backend, "backend": "onnx", "model": path, "providers": [ONNX Runtime execution providers]);
  then per frame an int64 tag (≥ 0) followed by width·height·3 bytes of RGB; tag −1 ends the
  stream; tag −2 (RESET) ends a sequence: tracking state is dropped, the worker answers with one
  RESET result (tag −2, zeros) and waits for the next sequence (the cluster's pose actor keeps one
  worker, and its loaded model, for many chunks; each chunk starts from the same state).
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

ONNX backend (GPU-ready: ONNX Runtime's CUDA provider where present, else CPU): a model with one
input, float32 RGB (1, 3, H, W) scaled to 0..1 (fixed H, W: the frame is resampled, nearest
neighbour; symbolic: the frame as is), and one output (1, N, 3) = (x, y as fractions of the width
and height, confidence), N = 33 (body) or K (every group, in keypoints.py's order). Stateless.
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
RESET_TAG = -2
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

    def reset(self) -> None:
        """Forget tracking state: the next frame is processed as the first of a video."""
        for solution in [self.holistic, *self.parts.values()]:
            if solution is not None:
                solution.reset()

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


class OnnxEstimator:
    """A pose model in ONNX format run by ONNX Runtime (see the module doc for its input/output)."""

    def __init__(self, model: str, providers: list[str]) -> None:
        import hashlib

        import onnxruntime as ort

        available = ort.get_available_providers()
        chosen = [p for p in providers if p in available]
        if not chosen:
            raise SystemExit(f"none of the ONNX Runtime providers {providers} is here ({available})")
        self.session = ort.InferenceSession(model, providers=chosen)
        self.providers = self.session.get_providers()
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] != 3:
            raise SystemExit(f"{model}: expected one input (1, 3, H, W), got {[i.shape for i in inputs]}")
        self.input_name = inputs[0].name
        h, w = inputs[0].shape[2:]
        self.input_size = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        self.points = outputs[0].shape[1]
        if self.points not in (GROUP_SIZES["body"], K) or outputs[0].shape[2] != 3:
            raise SystemExit(
                f"{model}: expected output (1, {GROUP_SIZES['body']} or {K}, 3), got {outputs[0].shape}"
            )
        with open(model, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:16]
        self.model = f"onnx {model.rsplit('/', 1)[-1]} (sha256 {digest})"
        self.version = ort.__version__
        self.unavailable = [] if self.points == K else [g for g in GROUP_SIZES if g != "body"]

    def describe(self) -> dict:
        return {
            "model": self.model,
            "model_version": f"onnxruntime {self.version}",
            "providers": self.providers,
            "groups": GROUP_SIZES,
            "unavailable_groups": self.unavailable,
            "errors": {},
            "confidence": {g: "the model's third output channel" for g in GROUP_SIZES},
        }

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def process(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        if self.input_size is not None and self.input_size != (h, w):
            rows = np.arange(self.input_size[0]) * h // self.input_size[0]
            cols = np.arange(self.input_size[1]) * w // self.input_size[1]
            rgb = rgb[rows][:, cols]
        x = (rgb.transpose(2, 0, 1)[None].astype(np.float32)) / np.float32(255)
        y = np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float32)[0]
        out = np.full((K, 3), np.nan, dtype=np.float32)
        out[:, 2] = 0.0
        out[: self.points, 0] = y[:, 0] * w
        out[: self.points, 1] = y[:, 1] * h
        out[: self.points, 2] = y[:, 2]
        return out


def make_estimator(config: dict):
    """The estimator a worker's configuration line asks for (MediaPipe unless "backend" is "onnx")."""
    if config.get("backend", "mediapipe") == "onnx":
        return OnnxEstimator(str(config["model"]), list(config.get("providers") or ["CPUExecutionProvider"]))
    return Estimator(static=bool(config.get("static_image_mode", False)))


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
    est = make_estimator(config)
    stdout.write((json.dumps(est.describe()) + "\n").encode())
    stdout.flush()
    size = w * h * 3
    while True:
        try:
            (tag,) = struct.unpack("<q", _read_exact(stdin, 8))
        except EOFError:
            return 0
        if tag == RESET_TAG:
            est.reset()
            stdout.write(struct.pack("<q", RESET_TAG) + np.zeros((K, 3), "<f4").tobytes())
            stdout.flush()
            continue
        if tag < 0:
            return 0
        rgb = np.frombuffer(_read_exact(stdin, size), dtype=np.uint8).reshape(h, w, 3)
        result = est.process(rgb)
        stdout.write(struct.pack("<q", tag) + result.astype("<f4").tobytes())
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
