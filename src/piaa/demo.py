"""``piaa demo``: every stage of piaa, end to end, on an example that ships with its dependencies.

The example world: scikit-image's bundled photos, each in photometric variants (exposure x
saturation). Half the photos, with simulated crowd score histograms, are the reference corpus (the
AVA role); the other half are a person's album.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from piaa.evaluation.simulate import Taste, crowd_histograms, crowd_taste, photo_attributes

if TYPE_CHECKING:
    from piaa.models.selection import Selection

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


def simulated_user() -> Taste:
    """The demo's person: likes bright, muted (pastel) photos, where the crowd likes colourful ones, so
    the generic model gets them wrong (a little inconsistent, as people are)."""
    return Taste(weights=np.array([1.0, -0.8, 0.0, 0.0, 0.0], np.float32), noise=0.1)


def in_words(sel: Selection) -> str:
    """What the personalization did, for a photographer: did the person's choices change the model, and
    how often did each model pick the photo the person preferred in pairs it had not been trained on."""
    held_out = sel.cv_accuracy
    if not held_out:
        return "learned from every choice (too few choices to check on unseen pairs)"
    if sel.kind == "generic":
        return (
            f"kept the starting model: on pairs held back for checking, learning the choices did not pick "
            f"the person's favourite clearly more often than the starting model "
            f"({held_out[sel.choice]:.0%})"
        )
    return (
        f"learned from the choices: on pairs held back for checking it picks the person's favourite "
        f"{held_out[sel.choice]:.0%} of the time, the starting model {held_out['generic']:.0%}"
    )


def close_store_files(path: Path) -> None:
    """Fold the store's write-ahead log into it and remove ``-wal``/``-shm``: SQLite leaves them behind
    when the last connection to close was read-only (``personalize`` reads the store that way)."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()  # the last connection with write access removes -wal and -shm


def run(
    out: str | Path = "piaa-demo", seed: int = 0, pairs: int = 100, verbose: bool = False
) -> dict[str, float]:
    """Build the example, the reference, a generic and a personal profile; compare their rankings of
    photos the person never judged; write ``report.html``. Prints plain words; ``verbose`` adds the
    numbers behind them (pairs inferred, the selection's candidates, Spearman rho). Returns the measured
    agreement (``{model}_spearman`` in [-1, 1] and ``{model}_pairwise`` in [0, 1], on the held-out
    photos)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from piaa.evaluation.metrics import pairwise_accuracy, spearman
    from piaa.features.reference import build_reference
    from piaa.models.personalize import personalize
    from piaa.models.profile import load_profile
    from piaa.preferences import PreferenceStore
    from piaa.sampling import RandomSampler

    console = Console(highlight=False)

    def detail(msg: str) -> None:
        if verbose:
            console.print(f"   [dim]{msg}[/]")

    if not verbose:
        console.print(
            f"piaa demo: learning a simulated person's taste from {pairs} clicks, about a minute "
            "(--verbose shows the numbers behind each step)"
        )
    ex = make_example(out, seed)
    root = ex.root
    scenes = len(ex.album_files) // (len(EXPOSURES) * len(SATURATIONS))
    console.print(
        f"[bold]1. Example photos[/]: an album of {len(ex.album_files)} photos ({scenes} scenes, each at "
        f"{len(EXPOSURES)} brightnesses and {len(SATURATIONS)} colour strengths), and photos of other scenes "
        f"rated by a simulated crowd, in {escape(str(root))}"
    )
    rep = build_reference(ex.labels, ex.reference_images, root / "reference", progress=verbose)
    console.print(
        f"[bold]2. The crowd's taste[/]: {rep.embedded} crowd-rated photos read (the reference corpus)"
    )

    user = simulated_user()
    rng = np.random.default_rng(seed)
    names = [p.name for p in ex.album_files]
    truth = user.utility(np.stack([photo_attributes(Image.open(p)) for p in ex.album_files]))
    order = rng.permutation(len(names))
    judged, held_out = sorted(order[: len(names) * 3 // 5]), sorted(order[len(names) * 3 // 5 :])
    store_path = root / "preferences.sqlite"
    store_path.unlink(missing_ok=True)
    sampler = RandomSampler([names[i] for i in judged], seed=seed)
    index = {n: i for i, n in enumerate(names)}
    with PreferenceStore(store_path) as store:
        for _ in range(pairs):
            a, b = sampler.next()
            ia, ib = index[a], index[b]
            store.add(*((a, b) if user.prefers(truth[ia], truth[ib], rng) else (b, a)), source="simulated")
        store.export_csv(root / "preferences.csv")
    console.print(
        f"[bold]3. Your choices[/]: a simulated person who likes bright, soft-coloured photos (the crowd "
        f"likes vivid ones) clicked the better photo of {pairs} pairs, among {len(judged)} album photos "
        f"({store_path.name})"
    )
    generic = personalize(root / "reference", ex.album, None, root / "profile-generic", progress=False)
    personal = personalize(root / "reference", ex.album, store_path, root / "profile", progress=verbose)
    r = personal.report
    console.print(
        f"[bold]4. A personal model[/]: trained on those choices in {r.seconds:.0f} s; it "
        f"{in_words(r.selection)}"
    )
    detail(
        f"{r.pairs_stated} stated + {r.pairs_inferred} inferred pairs (a>b, b>c gives a>c); "
        f"{r.neighbors} reference photos near the album; chosen: {r.selection.describe()}"
    )
    nima = load_profile("nima-ava")
    nima_personal = personalize(
        None, ex.album, store_path, root / "profile-nima", generic="nima-ava", progress=False
    )
    close_store_files(store_path)
    console.print(
        f"[bold]   Without crowd ratings of your own[/]: the built-in crowd model (nima-ava, trained on "
        f"AVA's photo-contest ratings) personalized with the same choices in "
        f"{nima_personal.report.seconds:.0f} s; it {in_words(nima_personal.report.selection)}"
    )
    detail(f"chosen: {nima_personal.report.selection.describe()}")
    test_files = [ex.album_files[i] for i in held_out]
    t = truth[held_out]
    results: dict[str, float] = {}
    rankings = {}
    models = (
        ("generic", generic),
        ("personal", personal),
        ("nima-ava", nima),
        ("nima-ava personal", nima_personal),
    )
    for label, prof in models:
        scores = np.array([x.score for x in prof.score(test_files)])
        results[f"{label}_spearman"] = spearman(scores, t)
        results[f"{label}_pairwise"] = pairwise_accuracy(scores, t)
        rankings[label] = sorted(zip(scores, test_files, strict=True), key=lambda x: -x[0])
    true_rank = {p: k for k, p in enumerate(sorted(test_files, key=lambda p: -truth[index[p.name]]), 1)}
    table = Table(
        "#",
        "before: the crowd's taste",
        "after: your taste",
        title=f"5. The {len(held_out)} photos the person never judged, best first (top 8; "
        "#n = where the person would put it)",
    )
    for k in range(8):
        (_, pg), (_, pp) = rankings["generic"][k], rankings["personal"][k]
        table.add_row(
            str(k + 1), f"{escape(pg.stem)} (#{true_rank[pg]})", f"{escape(pp.stem)} (#{true_rank[pp]})"
        )
    console.print(table)
    console.print(
        f"Of two photos the person never judged, the model picks the one they prefer: "
        f"{results['generic_pairwise']:.0%} of the time before, {results['personal_pairwise']:.0%} after "
        f"(built-in crowd model: {results['nima-ava_pairwise']:.0%} before, "
        f"{results['nima-ava personal_pairwise']:.0%} after)"
    )
    detail(
        f"Spearman rho against the person's taste: {results['generic_spearman']:.2f} -> "
        f"{results['personal_spearman']:.2f} (reference), {results['nima-ava_spearman']:.2f} -> "
        f"{results['nima-ava personal_spearman']:.2f} (nima-ava)"
    )
    write_report(root / "report.html", rankings, true_rank, results)
    console.print(f"[bold]6. See it[/]: open {escape(str(root / 'report.html'))}")
    return results


def write_report(path: Path, rankings: dict, true_rank: dict, results: dict[str, float]) -> None:
    """A small HTML page: thumbnails of the held-out photos in rank order, before and after."""
    import html
    import os

    from piaa.io import atomic_write_text

    rows = []
    for label in rankings:
        cells = "".join(
            f'<figure><img src="{html.escape(os.path.relpath(p, path.parent))}" loading="lazy">'
            f"<figcaption>{k}. {s:.2f}<br><small>person: #{true_rank[p]}</small></figcaption></figure>"
            for k, (s, p) in enumerate(rankings[label], 1)
        )
        rho, acc = results[f"{label}_spearman"], results[f"{label}_pairwise"]
        rows.append(
            f"<h2>{label} model — Spearman ρ {rho:.2f}, pairwise accuracy {acc:.0%}</h2>"
            f'<div class="row">{cells}</div>'
        )
    page = f"""<!doctype html><meta charset="utf-8"><title>piaa demo</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}} .row{{display:flex;flex-wrap:wrap;gap:8px}}
figure{{margin:0;width:128px;text-align:center;font-size:13px}}
img{{width:128px;height:96px;object-fit:cover}}</style>
<h1>piaa demo: ranking before and after personalization</h1>
<p>Photos the simulated person (who likes bright, muted photos, unlike the crowd) never judged, ranked by
each model, best first. "person: #n" is where the person's own taste puts the photo.</p>
{"".join(rows)}
"""
    atomic_write_text(path, page)
