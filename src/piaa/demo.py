"""``piaa demo``: every stage of piaa, end to end, on an example that ships with its dependencies.

The example world: scikit-image's bundled photos, each in photometric variants (exposure x
saturation). Half the photos, with simulated crowd score histograms, are the reference corpus (the
AVA role); the other half are a person's album.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from piaa.simulate import crowd_histograms, crowd_taste, photo_attributes

SAMPLE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
    "colorwheel", "camera", "coins", "moon", "clock", "brick", "grass",
)  # fmt: skip
EXPOSURES = (0.55, 0.8, 1.0, 1.25, 1.5)
SATURATIONS = (0.3, 1.0, 1.8)


def sample_photo(name: str, side: int = 384) -> Image.Image:
    import skimage.data

    a = getattr(skimage.data, name)()
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    img = Image.fromarray(a[..., :3].astype(np.uint8))
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return img


def variant(img: Image.Image, exposure: float, saturation: float) -> Image.Image:
    from PIL import ImageEnhance

    return ImageEnhance.Color(ImageEnhance.Brightness(img).enhance(exposure)).enhance(saturation)


@dataclass
class Example:
    root: Path
    album: Path
    reference_images: Path
    labels: Path
    album_files: list[Path]


def make_example(root: str | Path, seed: int = 0) -> Example:
    """Write the example world under ``root`` (idempotent for a seed)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    names = list(SAMPLE_PHOTOS)
    rng.shuffle(names)
    ref_names, album_names = names[::2], names[1::2]
    album, refdir = root / "album", root / "reference-images"
    album.mkdir(parents=True, exist_ok=True)
    refdir.mkdir(parents=True, exist_ok=True)
    ref_ids, ref_attrs, album_files = [], [], []
    for group, folder in ((ref_names, refdir), (album_names, album)):
        for name in group:
            base = sample_photo(name)
            for i, e in enumerate(EXPOSURES):
                for j, s in enumerate(SATURATIONS):
                    img = variant(base, e, s)
                    stem = f"{name}-e{i}s{j}"
                    path = folder / f"{stem}.jpg"
                    if not path.exists():
                        img.save(path, quality=92)
                    if folder is refdir:
                        ref_ids.append(stem)
                        ref_attrs.append(photo_attributes(img))
                    else:
                        album_files.append(path)
    counts = crowd_histograms(crowd_taste().utility(np.stack(ref_attrs)), rng)
    labels = root / "crowd-labels.txt"
    with open(labels, "w") as f:
        for k, (stem, c) in enumerate(zip(ref_ids, counts, strict=True), 1):
            f.write(f"{k} {stem} {' '.join(map(str, c))} 0 0 0\n")
    return Example(root, album, refdir, labels, album_files)


def run(out: str | Path = "piaa-demo", seed: int = 0) -> None:
    """Build the example, embed the reference corpus and show each album photo's neighbours."""
    from rich.console import Console

    from piaa.features import FeatureExtractor
    from piaa.reference import Reference, build_reference

    console = Console()
    ex = make_example(out, seed)
    console.print(f"example world in {ex.root}: {len(ex.album_files)} album photos")
    rep = build_reference(ex.labels, ex.reference_images, ex.root / "reference")
    console.print(f"reference: {rep.embedded} images embedded ({rep.images_per_second:.0f} images/s)")
    ref = Reference.open(ex.root / "reference")
    feats = FeatureExtractor(ref.create_backbone()).images([Image.open(p) for p in ex.album_files[:3]])
    sims, rows = ref.neighbors(feats.embedding.numpy(), k=3)
    means = ref.mean_scores()
    for p, s, r in zip(ex.album_files[:3], sims, rows, strict=True):
        near = ", ".join(f"{ref.ids[j]} ({c:.2f}, crowd {means[j]:.1f})" for c, j in zip(s, r, strict=True))
        console.print(f"{p.name}: {near}")
