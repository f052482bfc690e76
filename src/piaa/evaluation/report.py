"""The benchmark's result: per method and X, one value per album; printed as the paper's Table 1
(mean ± std over albums) in Markdown, and plotted."""

from __future__ import annotations

from dataclasses import dataclass
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
