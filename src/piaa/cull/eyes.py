"""Closed eyes, where a face is found: MediaPipe Face Mesh (mediapipe 0.10.14, ``pip install piaa[eyes]``).

mediapipe 0.10.14's wheel carries the face-detection and face-landmark models under
``mediapipe/modules/`` and runs them offline through ``mediapipe.solutions``; 1.x wheels carry none.
It needs protobuf < 5 (``GetPrototype``, ``FieldDescriptor.label``), which onnx >= 1.18 cannot load
beside, so it works only in an environment of its own with onnx 1.17 (``docs/guide/cull.md``); where
it imports but fails, :func:`factory` says why and the flag is left out.

An eye is closed when its eye aspect ratio, the lid gap over the eye's width from the mesh's
landmarks (Soukupova & Cech, "Real-Time Eye Blink Detection using Facial Landmarks", CVWW 2016), is
below :data:`EAR_CLOSED` (their threshold, 0.2; not tuned here); a face has its eyes closed when both
are. The mesh runs with refined eye landmarks (``refine_landmarks``), whose lids follow the eye. A
photo is flagged when any face it holds of at least :data:`MIN_FACE` of the image width has its eyes
closed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

EAR_CLOSED = 0.2  # eye aspect ratio below which an eye counts as closed (Soukupova & Cech 2016)
MIN_FACE = 0.08  # faces narrower than this share of the image width are ignored (too small to judge)
# Face Mesh landmark numbers: (outer corner, inner corner, upper lid, lower lid) of each eye
_EYES = ((33, 133, 159, 145), (362, 263, 386, 374))

_REASON = ""


def available() -> bool:
    """Whether mediapipe's face mesh imports here."""
    return factory() is not None


def unavailable_reason() -> str:
    return _REASON or "mediapipe is not installed (pip install 'piaa[eyes]'; see docs/guide/cull.md)"


def eye_aspect_ratio(points: np.ndarray) -> float:
    """(4 x 2) outer corner, inner corner, upper lid, lower lid (pixels) -> lid gap / eye width."""
    width = float(np.linalg.norm(points[0] - points[1]))
    return float(np.linalg.norm(points[2] - points[3])) / width if width > 0 else 0.0


def factory() -> Callable[[], Callable[[np.ndarray], bool | None]] | None:
    """A maker of eye checkers (one per thread), or None when mediapipe is unusable here."""
    global _REASON
    try:
        from mediapipe.python.solutions import face_mesh  # type: ignore[import-not-found]
    except Exception as e:  # noqa: BLE001 - absent, or broken beside this numpy/protobuf
        _REASON = (
            f"mediapipe unusable here ({type(e).__name__}: {e})" if not isinstance(e, ImportError) else ""
        )
        return None

    def make() -> Callable[[np.ndarray], bool | None]:
        mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=5, refine_landmarks=True)

        def closed(rgb: np.ndarray) -> bool | None:
            """H x W x 3 uint8 -> True (a face with both eyes closed), False (faces, eyes open), None
            (no face large enough)."""
            h, w = rgb.shape[:2]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = mesh.process(np.ascontiguousarray(rgb[..., :3]))
            verdicts = []
            for face in found.multi_face_landmarks or []:
                pts = np.array([(p.x * w, p.y * h) for p in face.landmark])
                if np.ptp(pts[:, 0]) < MIN_FACE * w:
                    continue
                ears = [eye_aspect_ratio(pts[list(e)]) for e in _EYES]
                verdicts.append(max(ears) < EAR_CLOSED)
            return any(verdicts) if verdicts else None

        return closed

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protobuf 4's deprecation notes, once per photo otherwise
            make()(np.zeros((64, 64, 3), np.uint8))  # mediapipe imports beside protobuf >= 5 but fails here
    except Exception as e:  # noqa: BLE001
        _REASON = f"mediapipe unusable here ({type(e).__name__}: {e})"
        return None
    return make


__all__ = ["EAR_CLOSED", "MIN_FACE", "available", "eye_aspect_ratio", "factory", "unavailable_reason"]
