"""A few photos through a backbone's cached ONNX graph, without torch.

:class:`~piaa.features.extract.OnnxEngine` exports each backbone once per (name, weights hash, input
size) into piaa's cache (``cache_dir() / "onnx"``). When that graph is there, running it needs only ONNX
Runtime, numpy and the backbone's :class:`~piaa.backbones.base.Preprocess`; importing torch (about a
second, most of a one-photo neighbour query on a 2-core machine) and building the network are skipped.
The session is made with the same options as ``OnnxEngine``'s and the photos are decoded, batched and
normalised by the same functions, so the features are the same numbers (``tests/test_cached_onnx.py``).

Only :meth:`Reference.embed <piaa.features.reference.Reference.embed>` uses it, for up to one batch of
query photos; everything else goes through :class:`~piaa.features.extract.FeatureExtractor`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from piaa.backbones.base import FeatureMaps, Preprocess, cache_dir
from piaa.data.images import FailureLog, ImageError
from piaa.errors import UsageError


def onnx_graph_path(name: str, weights_hash: str, size: int) -> Path:
    """Where ``OnnxEngine`` keeps the graph of backbone ``name`` with weights ``weights_hash`` at input
    ``size`` (the same name; ``tests/test_cached_onnx.py`` holds the two together)."""
    return cache_dir() / "onnx" / f"{name}-{weights_hash}-{size}-{len(FeatureMaps._fields)}out.onnx"


def session_threads() -> int:
    """``OnnxEngine``'s intra-op threads as ``FeatureExtractor`` makes it: one per ONNX Runtime call on 2 or
    more cores (it runs two calls at once), and on a single core torch's thread count, which is one there
    unless ``OMP_NUM_THREADS`` says otherwise."""
    return 1


def decode(path: str | Path, preprocess: Preprocess, previews: bool = False) -> tuple[np.ndarray | None, str]:
    """One photo's pixels, or None and the reason it could not be read (every extractor's decode);
    ``previews``: camera JPEGs may be decoded from their embedded preview (``RunSettings.previews``)."""
    try:
        return preprocess.load(path, previews=previews), ""
    except ImageError as e:
        return None, e.reason
    except Exception as e:  # noqa: BLE001 - a batch must go on past any one bad file
        return None, f"unreadable ({type(e).__name__}: {e})"


class CachedOnnx:
    """A backbone's exported ONNX graph run by ONNX Runtime; features as numpy arrays."""

    def __init__(self, path: str | Path, preprocess: Preprocess) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = session_threads()
        opts.log_severity_level = 3
        self.path = Path(path)
        self.preprocess = preprocess
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        if self.outputs != list(FeatureMaps._fields):
            raise UsageError(f"{path}: outputs {self.outputs}, expected {list(FeatureMaps._fields)}")

    @classmethod
    def find(cls, name: str, weights_hash: str) -> CachedOnnx | None:
        """The cached graph of a registered backbone with these weights, or None when it is not cached,
        ONNX Runtime is missing, or the graph does not load (the caller then builds the backbone)."""
        from piaa.backbones import get_backbone_config

        try:
            preprocess = get_backbone_config(name).preprocess
            path = onnx_graph_path(name, weights_hash, preprocess.size)
            if not path.is_file():
                return None
            return cls(path, preprocess)
        except Exception:  # noqa: BLE001 - any failure here only means taking the usual route
            return None

    def forward(self, pixels: np.ndarray) -> FeatureMaps:
        """N x H x W x 3 uint8 (already resized) -> feature maps (numpy arrays)."""
        outs: list[Any] = self.session.run(None, {"x": self.preprocess.to_array(pixels)})
        return FeatureMaps(*outs)

    def files(
        self, paths: Sequence[str | Path], *, failures: FailureLog | None = None
    ) -> tuple[list[int], FeatureMaps | None]:
        """The features of ``paths`` as one batch (what ``FeatureExtractor.files`` does for up to
        ``batch_size`` files): positions that decoded and their maps; failures go to ``failures``."""
        with warnings.catch_warnings():
            decoded = [(i, *decode(p, self.preprocess)) for i, p in enumerate(paths)]
        if failures is not None:
            for i, _, reason in decoded:
                if reason:
                    failures.add(paths[i], reason)
        good = [(i, a) for i, a, _ in decoded if a is not None]
        if not good:
            return [], None
        return [i for i, _ in good], self.forward(np.stack([a for _, a in good]))
