"""The cull report: one strip of thumbnails per group, the pick marked, flags shown (self-contained)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from piaa.cull.core import CullResult
from piaa.io import atomic_write_text

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;background:#fafafa}
.group{margin:0 0 18px}.group h2{font-size:14px;margin:0 0 4px;color:#444}
.strip{display:flex;gap:8px;overflow-x:auto;padding-bottom:4px}
figure{margin:0;width:210px;flex:none;text-align:center;font-size:12px;border:3px solid transparent;
padding:2px;background:#fff}
figure.pick{border-color:#2e7d32}figure.reject{opacity:.55;border-color:#c62828}
img{max-width:200px;max-height:150px;display:block;margin:auto}
.flag{display:inline-block;background:#c62828;color:#fff;border-radius:3px;padding:0 4px;margin:1px}
.status{font-weight:bold}"""


def write_report(path: Path, result: CullResult, profile_name: str) -> Path:
    """``path`` (HTML, thumbnails embedded, written atomically); needs the thumbnails that
    ``CullSettings(thumbnails=True)`` keeps. Returns ``path``."""
    parts = []
    for members in result.groups:
        figures = []
        for r in members:
            m = result.measures.get(r.path)
            src = (
                "data:image/jpeg;base64," + base64.b64encode(m.thumb).decode("ascii") if m and m.thumb else ""
            )
            flags = "".join(f'<span class="flag">{html.escape(f)}</span>' for f in r.flags)
            when = r.capture_time.isoformat(sep=" ", timespec="milliseconds") if r.capture_time else "no time"
            figures.append(
                f'<figure class="{r.status}" data-path="{html.escape(str(r.path))}">'
                f'<img src="{src}" alt="{html.escape(r.path.name)}"><figcaption>'
                f'<span class="status">{"★ " if r.status == "pick" else ""}{r.status}</span> #{r.rank} '
                f"· {r.score:.2f}<br>{html.escape(r.path.name)}<br><small>{when} ({r.time_source})</small>"
                f"<br>{flags}</figcaption></figure>"
            )
        n = len(members)
        parts.append(
            f'<section class="group"><h2>group {members[0].group + 1}: {n} photo{"s" if n > 1 else ""}</h2>'
            f'<div class="strip">{"".join(figures)}</div></section>'
        )
    picks = sum(r.status == "pick" for r in result.rows)
    left_out = [*result.failures.lines(), *result.skipped.lines()]
    if left_out:  # the report must not read as if the shoot were complete
        items = "".join(f"<li>{html.escape(line)}</li>" for line in left_out)
        parts.append(
            f'<section class="left-out"><h2>{len(left_out)} file{"s" if len(left_out) > 1 else ""} not culled'
            f"</h2><ul>{items}</ul></section>"
        )
    page = f"""<!doctype html><meta charset="utf-8"><title>piaa cull</title><style>{_STYLE}</style>
<h1>piaa cull: {len(result.rows)} photos, {len(result.groups)} groups, {picks} picks</h1>
<p>Ranked by {html.escape(profile_name)} (scores 1-10, higher is better). The pick of each group has a green
frame; rejects are faded with a red frame; flags in red.</p>
{"".join(parts)}
"""
    atomic_write_text(path, page)
    return path
