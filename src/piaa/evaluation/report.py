"""The benchmark's result: per method and X, one value per album; printed as the paper's Table 1
(mean ± std over albums) in Markdown, and plotted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["BenchResult"]


@dataclass
class BenchResult:
    """Per (method, X): one Spearman rho in [-1, 1] and one pairwise accuracy in [0, 1] per album, each
    the mean over the splits; ``seconds`` is the wall time of the run."""

    rho: dict[tuple[str, int], list[float]]
    acc: dict[tuple[str, int], list[float]]
    xs: tuple[int, ...]
    methods: list[str]
    description: str
    seconds: float
    splits: int
    alphas: dict[int, list[float]] = field(default_factory=dict)  # per X: piaa's chosen pull, per split
    choices: dict[int, list[str]] = field(default_factory=dict)  # per X: piaa's chosen kind, per split

    def table(self) -> str:
        """Markdown: one row per method, rho (mean ± std over albums) and mean accuracy per X."""
        head = "| method | " + " | ".join(f"X = {x}: ρ | X = {x}: pair acc." for x in self.xs) + " |"
        lines = [head, "|---|" + "---|---|" * len(self.xs)]
        for m in self.methods:
            cells = []
            for x in self.xs:
                r, a = self.rho.get((m, x), []), self.acc.get((m, x), [])
                cells += [
                    f"{np.mean(r):.3f} ± {np.std(r):.3f}" if r else "–",
                    f"{np.mean(a):.1%}" if a else "–",
                ]
            name = f"**{m}**" if m == "piaa (full)" else m
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def personalization_notes(
        self, full: str = "piaa (full)", generic: str = "w/o rankings (generic)"
    ) -> str:
        """Does personalization ever do harm? Per X: the albums whose personal model ranks worse than
        their generic model (by more than 0.02 ρ), the worst difference, and how far the pairs chose to
        move from the generic model (per split: kept the ``generic`` model, a ``fine-tune`` pulled back by
        ``alpha``, or a ``fit`` to convergence; :mod:`piaa.models.selection`)."""
        lines = []
        for x in self.xs:
            p, g = self.rho.get((full, x)), self.rho.get((generic, x))
            if not p or not g:
                continue
            diff = np.asarray(p) - np.asarray(g)
            line = (
                f"- X = {x}: personal − generic ρ per album: mean {diff.mean():+.3f}, "
                f"worst {diff.min():+.3f}; "
                f"{int((diff < -0.02).sum())} of {len(diff)} albums more than 0.02 below their generic model"
            )
            a, c = self.alphas.get(x), self.choices.get(x)
            if a and c and len(a) == len(c):
                tuned = [v for v, k in zip(a, c, strict=True) if k == "fine-tune"]
                line += "; chosen per split: " + ", ".join(
                    f"{k} {c.count(k)}" + (f" (mean alpha {np.mean(tuned):.2f})" if k == "fine-tune" else "")
                    for k in ("generic", "fine-tune", "fit")
                    if k in c
                )
            elif a:
                line += (
                    f"; chosen alpha mean {np.mean(a):.2f} (generic kept in {np.mean(np.asarray(a) == 0):.0%}"
                    f" of splits, full fine-tune in {np.mean(np.asarray(a) == 1):.0%})"
                )
            lines.append(line)
        return "\n".join(lines)

    def plot(self, path: Path) -> None:
        """A bar chart of rho per method and X with std error bars, written to ``path`` (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 4.5))
        width = 0.8 / len(self.xs)
        pos = np.arange(len(self.methods))
        for j, x in enumerate(self.xs):
            means = [np.mean(self.rho.get((m, x), [np.nan])) for m in self.methods]
            stds = [np.std(self.rho.get((m, x), [np.nan])) for m in self.methods]
            ax.bar(pos + j * width, means, width, yerr=stds, capsize=3, label=f"X = {x}")
        ax.set_xticks(pos + width * (len(self.xs) - 1) / 2, self.methods, rotation=30, ha="right")
        ax.set_ylabel("Spearman ρ (mean ± std over albums)")
        ax.axhline(0, color="black", lw=0.5)
        ax.legend()
        ax.set_title(self.description, fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
