"""Images -> feature maps, fast on a CPU.

Two engines compute the same function: ``torch`` (the reference: eager PyTorch) and ``onnx`` (the fast
path: the backbone exported once to ONNX and run by ONNX Runtime, about 3x faster end to end on a
2-core CPU, see the README's benchmarks). Decoding runs in worker processes so that JPEG decoding
overlaps the network. Bad files never stop a batch: they are recorded in a
:class:`~piaa.data.images.FailureLog` and skipped.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from piaa.backbones import Backbone, FeatureMaps, Preprocess, cache_dir
from piaa.data.images import FailureLog, ImageError
from piaa.io import atomic_open

log = logging.getLogger(__name__)
ENGINES = ("auto", "onnx", "torch")
# ONNX Runtime and eager PyTorch agree to this (max abs difference, feature values up to ~25).
ONNX_ATOL = 1e-3


class _Decode(Dataset):
    def __init__(self, paths: Sequence[str | Path], preprocess: Preprocess) -> None:
        self.paths = list(paths)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str]:
        try:
            return i, self.preprocess.load(self.paths[i]), ""
        except ImageError as e:
            return i, None, e.reason
        except Exception as e:  # noqa: BLE001 - a batch must go on past any one bad file
            return i, None, f"unreadable ({type(e).__name__}: {e})"


def _collate(items: list) -> list:
    return items


class OnnxEngine:
    """The backbone as an ONNX graph, exported once per (backbone, weights, size) into piaa's cache."""

    def __init__(self, backbone: Backbone, threads: int | None = None) -> None:
        import onnxruntime as ort

        info = backbone.info
        name = f"{info.name}-{info.weights_hash}-{info.preprocess.size}-{len(FeatureMaps._fields)}out.onnx"
        path = cache_dir() / "onnx" / name
        if not path.is_file():
            export_onnx(backbone, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.path = path

    def __call__(self, x: np.ndarray) -> FeatureMaps:
        outs = self.session.run(None, {"x": x})
        return FeatureMaps(*(torch.from_numpy(o) for o in outs))


def export_onnx(backbone: Backbone, path: Path) -> None:
    """Export atomically: a killed export never leaves a half-written graph in the cache."""
    size = backbone.preprocess.size
    names = list(FeatureMaps._fields)
    with atomic_open(path) as f, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape arithmetic
        torch.onnx.export(
            backbone.eval(),
            (torch.zeros(2, 3, size, size),),
            f,
            input_names=["x"],
            output_names=names,
            dynamic_axes={n: {0: "n"} for n in ["x", *names]},
            opset_version=17,
            dynamo=False,
        )


@dataclass
class Batch:
    """Feature maps of the images at ``indices`` (positions in the input list) that decoded."""

    indices: list[int]
    features: FeatureMaps


class FeatureExtractor:
    """Runs a backbone over files or in-memory images, batched, with decode workers and a progress bar."""

    def __init__(
        self,
        backbone: Backbone,
        *,
        engine: str = "auto",
        batch_size: int = 8,
        workers: int | None = None,
        streams: int | None = None,
    ) -> None:
        """``workers``: decode processes; ``streams``: concurrent ONNX Runtime calls (default: cores, at
        most 2)."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.backbone = backbone.eval()
        self.batch_size = batch_size
        self.workers = 1 if workers is None else workers
        self.engine_name = "torch"
        self.streams = 1
        self._onnx: OnnxEngine | None = None
        if engine in ("auto", "onnx"):
            try:
                n = max(1, min(2, os.cpu_count() or 1)) if streams is None else streams
                self._onnx = OnnxEngine(backbone, threads=1 if n > 1 else None)
                self.engine_name, self.streams = "onnx", n  # eager PyTorch already uses every core
            except Exception as e:  # noqa: BLE001
                if engine == "onnx":
                    raise
                log.warning("ONNX Runtime unavailable (%s); using PyTorch", e)

    @property
    def preprocess(self) -> Preprocess:
        return self.backbone.preprocess

    def forward(self, pixels: np.ndarray) -> FeatureMaps:
        """N x H x W x 3 uint8 (already resized) -> feature maps."""
        x = self.preprocess.to_array(pixels)
        if self._onnx is not None:
            return self._onnx(x)
        with torch.inference_mode():
            return self.backbone(torch.from_numpy(x))

    def images(self, images: Sequence[Image.Image | np.ndarray]) -> FeatureMaps:
        """Features of in-memory images (PIL images or H x W x 3 uint8 arrays of any size)."""
        out: list[FeatureMaps] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [self.preprocess.from_pil(im) for im in images[start : start + self.batch_size]]
            out.append(self.forward(np.stack(chunk)))
        return concat(out)

    def files(
        self,
        paths: Sequence[str | Path],
        *,
        failures: FailureLog | None = None,
        progress: bool | str = True,
    ) -> Iterator[Batch]:
        """Yield batches of features in input order; files that fail to decode go to ``failures``."""
        if not paths:
            return
        loader = DataLoader(
            _Decode(paths, self.preprocess),
            batch_size=self.batch_size,
            num_workers=self.workers if len(paths) > self.batch_size else 0,
            collate_fn=_collate,
            prefetch_factor=4 if self.workers and len(paths) > self.batch_size else None,
        )
        desc = progress if isinstance(progress, str) else "embedding"
        # ONNX Runtime runs each call on its calling thread (one intra-op thread), so ``streams`` Python
        # threads keep that many cores busy: on 2 cores this beats one call with 2 intra-op threads
        # by ~1.5x, because small convolutions scale poorly across threads.
        pool = ThreadPoolExecutor(self.streams) if self.streams > 1 else None
        pending: deque[tuple[list[int], Future | FeatureMaps | None, int]] = deque()
        try:
            with tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, smoothing=0.1) as bar:
                for items in loader:
                    good = [(i, a) for i, a, _ in items if a is not None]
                    if failures is not None:
                        for i, _, reason in items:
                            if reason:
                                failures.add(paths[i], reason)
                    pixels = np.stack([a for _, a in good]) if good else None
                    job: Future | FeatureMaps | None = None
                    if pixels is not None:
                        job = pool.submit(self.forward, pixels) if pool else self.forward(pixels)
                    pending.append(([i for i, _ in good], job, len(items)))
                    while pending and (len(pending) > self.streams or pool is None):
                        yield from self._finish(pending.popleft(), bar)
                while pending:
                    yield from self._finish(pending.popleft(), bar)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def collect(
        self, paths: Sequence[str | Path], *, failures: FailureLog | None = None, progress: bool | str = True
    ) -> tuple[list[int], FeatureMaps | None]:
        """All features at once, spatial maps in float16 (for training on cached maps): the positions in
        ``paths`` that decoded, and their maps (None when none did)."""
        kept: list[int] = []
        parts: list[FeatureMaps] = []
        for b in self.files(paths, failures=failures, progress=progress):
            kept += b.indices
            parts.append(half_maps(b.features))
        return kept, (concat(parts) if parts else None)

    @staticmethod
    def _finish(item: tuple[list[int], Future | FeatureMaps | None, int], bar: tqdm) -> Iterator[Batch]:
        indices, job, count = item
        if job is not None:
            yield Batch(indices, job.result() if isinstance(job, Future) else job)
        bar.update(count)


def concat(parts: Sequence[FeatureMaps]) -> FeatureMaps:
    if not parts:
        raise ValueError("no features to concatenate")
    return FeatureMaps(*(torch.cat(t) for t in zip(*parts, strict=True)))


def half_maps(f: FeatureMaps) -> FeatureMaps:
    """Spatial maps in float16 (half the memory when many are cached for training); the embedding stays."""
    return FeatureMaps(*(t.half() if t.ndim == 4 else t for t in f))

