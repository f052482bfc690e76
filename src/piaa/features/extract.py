"""Images -> feature maps, fast on a CPU.

Two engines compute the same function: ``torch`` (the reference: eager PyTorch) and ``onnx`` (the fast
path: the backbone exported once to ONNX and run by ONNX Runtime, about 3x faster end to end on a
2-core CPU, see the README's benchmarks). JPEG decoding overlaps the network (see
:class:`FeatureExtractor`). Bad files never stop a batch: they are recorded in a
:class:`~piaa.data.images.FailureLog` and skipped.
"""

from __future__ import annotations

import contextlib
import copy
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
from piaa.backbones.cached_onnx import decode as decode_one
from piaa.data.images import FailureLog
from piaa.io import atomic_open
from piaa.settings import RunSettings, torch_threads

log = logging.getLogger(__name__)
# ONNX Runtime and eager PyTorch agree to this (max abs difference, feature values up to ~25).
ONNX_ATOL = 1e-3


class _Decode(Dataset):
    def __init__(self, paths: Sequence[str | Path], preprocess: Preprocess, previews: bool) -> None:
        self.paths = list(paths)
        self.preprocess = preprocess
        self.previews = previews  # travels to the decode processes with the dataset

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str]:
        return i, *decode_one(self.paths[i], self.preprocess, self.previews)


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
    """Runs a backbone over files or in-memory images, batched, with a progress bar.

    With ONNX Runtime, ``streams`` threads (default: cores, at most 2) each run one call on one core,
    and where that takes every core (``workers=0``, the default on 1 and 2 cores) each thread decodes
    its own batch just before running it: no inter-process copies, and no core waits for another while
    there is decoding or network work left, whatever the photo size. On 2 cores this beat decode
    processes feeding the threads both for 500x375 photos and for 24-MP camera JPEGs (README
    benchmarks). ``workers=N`` decodes in N processes instead: the default is the cores left over by
    the network threads (at most 2), and one with eager PyTorch (overlapping its multi-threaded calls).
    ``previews``: camera JPEGs may be decoded from their embedded preview (:mod:`piaa.data.previews`).
    While :meth:`files` runs with ONNX Runtime, torch is held to one thread
    (:func:`piaa.settings.torch_threads`, unless a hold is already in force), so that what the caller
    does with each batch (a scoring head) does not spin OpenMP threads against ONNX Runtime's.
    """

    def __init__(self, backbone: Backbone, settings: RunSettings | None = None) -> None:
        """Runs as ``settings`` say (default :class:`~piaa.settings.RunSettings`'s defaults): engine,
        batch size, ``workers`` decode processes (0: on the network threads; None: the default, see the
        class), ``streams`` concurrent ONNX Runtime calls (None: cores, at most 2), previews, and
        whether :meth:`files` shows a progress bar."""
        self.settings = settings = settings or RunSettings()
        self.backbone = backbone.eval()
        self.engine_name = "torch"
        self.streams = 1
        self._onnx: OnnxEngine | None = None
        if settings.engine in ("auto", "onnx"):
            try:
                n = max(1, min(2, os.cpu_count() or 1)) if settings.streams is None else settings.streams
                self._onnx = OnnxEngine(backbone, threads=1 if n > 1 else None)
                self.engine_name, self.streams = "onnx", n  # eager PyTorch already uses every core
            except Exception as e:  # noqa: BLE001
                if settings.engine == "onnx":
                    raise
                log.warning("ONNX Runtime unavailable (%s); using PyTorch", e)

    def with_progress(self, progress: bool) -> FeatureExtractor:
        """This extractor (its network sessions shared, not rebuilt) with or without a progress bar."""
        if progress == self.settings.progress:
            return self
        other = copy.copy(self)
        other.settings = self.settings.replace(progress=progress)
        return other

    batch_size = property(lambda self: self.settings.batch_size, doc="Images per network call.")
    workers = property(lambda self: self.settings.workers, doc="Decode processes asked for (None: default).")
    previews = property(lambda self: self.settings.previews, doc="Camera JPEGs from their embedded preview.")

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

    def decode_workers(self) -> int:
        """Decode processes :meth:`files` uses: ``workers`` when given, else with ONNX Runtime 0 (decode
        on the network threads) when every core runs a network thread, and the spare cores (at most 2)
        when there are more; 1 with eager PyTorch."""
        if self.workers is not None:
            return self.workers
        if self._onnx is None:
            return 1
        return max(0, min(2, (os.cpu_count() or 1) - self.streams))

    def files(
        self,
        paths: Sequence[str | Path],
        *,
        failures: FailureLog | None = None,
        desc: str = "embedding",
    ) -> Iterator[Batch]:
        """Yield batches of features in input order; files that fail to decode go to ``failures``.
        ``desc``: the progress bar's label (a bar only when the settings say ``progress``)."""
        if not paths:
            return
        paths = list(paths)
        workers = self.decode_workers() if len(paths) > self.batch_size else 0
        progress = self.settings.progress
        pool = ThreadPoolExecutor(self.streams) if self._onnx is not None else None
        # the caller's head must not fight ONNX Runtime for the cores: one torch thread meanwhile
        held = contextlib.ExitStack()
        try:
            if pool is not None:
                held.enter_context(torch_threads(1))
            # load_image records decoder warnings with warnings.catch_warnings, which is process-wide:
            # overlapping loads on several threads can leave another load's recorder installed when
            # they end. The state from before the run is restored once every thread is done.
            with (
                warnings.catch_warnings(),
                tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, smoothing=0.1) as bar,
            ):
                jobs = self._in_workers(paths, workers, pool) if workers else self._in_threads(paths, pool)
                for count, reasons, job in jobs:
                    indices, features = job.result() if isinstance(job, Future) else job
                    if failures is not None:
                        for i, reason in reasons:
                            failures.add(paths[i], reason)
                    if indices:
                        yield Batch(indices, features)
                    bar.update(count)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            held.close()

    # Each job yields (files in the batch, [(position, failure reason)], the (indices, features) of those
    # that decoded, or a Future of them), in input order, keeping the threads busy a batch or two ahead.

    def _in_threads(self, paths: list, pool: ThreadPoolExecutor | None) -> Iterator[tuple]:
        """Each network thread decodes its own batch, then runs it."""
        size = self.batch_size

        def job(start: int) -> tuple:
            batch = range(start, min(start + size, len(paths)))
            decoded = [(i, *decode_one(paths[i], self.preprocess, self.previews)) for i in batch]
            good = [(i, a) for i, a, _ in decoded if a is not None]
            reasons = [(i, r) for i, _, r in decoded if r]
            features = self.forward(np.stack([a for _, a in good])) if good else None
            return len(batch), reasons, ([i for i, _ in good], features)

        starts = range(0, len(paths), size)
        if pool is None:
            yield from map(job, starts)
            return
        pending: deque[Future] = deque()
        for start in starts:
            pending.append(pool.submit(job, start))
            if len(pending) > 2 * self.streams:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _in_workers(self, paths: list, workers: int, pool: ThreadPoolExecutor | None) -> Iterator[tuple]:
        """``workers`` processes decode batches; the network threads run them."""
        loader = DataLoader(
            _Decode(paths, self.preprocess, self.previews),
            batch_size=self.batch_size,
            num_workers=workers,
            collate_fn=_collate,
            prefetch_factor=4,
        )
        pending: deque[tuple] = deque()
        for items in loader:
            good = [(i, a) for i, a, _ in items if a is not None]
            reasons = [(i, r) for i, _, r in items if r]
            indices = [i for i, _ in good]
            pixels = np.stack([a for _, a in good]) if good else None
            job: Future | tuple
            if pixels is None:
                job = (indices, None)
            elif pool is not None:
                job = pool.submit(lambda px, ix: (ix, self.forward(px)), pixels, indices)
            else:
                job = (indices, self.forward(pixels))
            pending.append((len(items), reasons, job))
            while pending and (len(pending) > self.streams or pool is None):
                yield pending.popleft()
        while pending:
            yield pending.popleft()

    def collect(
        self, paths: Sequence[str | Path], *, failures: FailureLog | None = None, desc: str = "embedding"
    ) -> tuple[list[int], FeatureMaps | None]:
        """All features at once, spatial maps in float16 (for training on cached maps): the positions in
        ``paths`` that decoded, and their maps (None when none did)."""
        kept: list[int] = []
        parts: list[FeatureMaps] = []
        for b in self.files(paths, failures=failures, desc=desc):
            kept += b.indices
            parts.append(half_maps(b.features))
        return kept, (concat(parts) if parts else None)


def concat(parts: Sequence[FeatureMaps]) -> FeatureMaps:
    if not parts:
        raise ValueError("no features to concatenate")
    return FeatureMaps(*(torch.cat(t) for t in zip(*parts, strict=True)))


def half_maps(f: FeatureMaps) -> FeatureMaps:
    """Spatial maps in float16 (half the memory when many are cached for training); the embedding stays."""
    return FeatureMaps(*(t.half() if t.ndim == 4 else t for t in f))
