"""The closed-eye flag: runs only where mediapipe 0.10.14 works (its own environment, see
docs/guide/cull.md); elsewhere the tests of the model skip and culling says the eyes were not checked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import SHARED
from piaa.cull import eyes
from piaa.cull.measure import analysis_image

FACE = SHARED / "data" / "photos" / "n02869837_bonnet.JPEG"  # a real photo of a child, eyes open
# Face Mesh's eye contours (landmark numbers), to paint the eyes shut
CONTOURS = (
    [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246],
    [362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398],
)


def test_eye_aspect_ratio():
    open_eye = np.array([[0, 0], [30, 0], [15, -5], [15, 5]], float)
    assert eyes.eye_aspect_ratio(open_eye) == pytest.approx(10 / 30)
    assert eyes.eye_aspect_ratio(np.array([[0, 0], [30, 0], [15, 1], [15, 2]], float)) < eyes.EAR_CLOSED
    assert eyes.eye_aspect_ratio(np.zeros((4, 2))) == 0.0


def test_unavailable_is_said_not_hidden():
    if eyes.available():
        pytest.skip("mediapipe works here")
    assert "mediapipe" in eyes.unavailable_reason()


@pytest.fixture(scope="module")
def checker():
    make = eyes.factory()
    if make is None:
        pytest.skip(f"no eye model: {eyes.unavailable_reason()}")
    if not FACE.is_file():
        pytest.skip(f"{FACE} absent")
    return make()


def test_open_eyes_closed_eyes_and_no_face(checker):
    img = analysis_image(Image.open(FACE).convert("RGB"))
    rgb = np.asarray(img)
    assert checker(rgb) is False
    from mediapipe.python.solutions import face_mesh

    h, w = rgb.shape[:2]
    with face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as mesh:
        pts = np.array([(p.x * w, p.y * h) for p in mesh.process(rgb).multi_face_landmarks[0].landmark])
    shut = img.copy()
    draw = ImageDraw.Draw(shut)
    for contour in CONTOURS:
        poly = pts[contour]
        cy, height = poly[:, 1].mean(), np.ptp(poly[:, 1])
        x0, x1 = int(poly[:, 0].min()), int(poly[:, 0].max())
        skin = rgb[int(cy + 1.5 * height) : int(cy + 2.5 * height), x0:x1].reshape(-1, 3).mean(0)
        draw.polygon([tuple(p) for p in poly], fill=tuple(int(c) for c in skin))
        draw.line([tuple(poly[0]), tuple(poly[8])], fill=(40, 30, 30), width=2)  # the closed lids' line
    assert checker(np.asarray(shut)) is True
    assert checker(np.full((200, 300, 3), 128, np.uint8)) is None
