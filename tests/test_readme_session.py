"""The README's typical session, run as written: every line of its ``text`` block, in a shell whose HOME
holds the three photo folders it names. ``piaa collect`` is a page: it is started as written, a person's
clicks are sent to it over HTTP as the page sends them, and it is stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_photo

ROOT = Path(__file__).resolve().parents[1]
COLLECT_URL = "http://127.0.0.1:8765"


def session_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## A typical session\s+```text\n(.*?)```", text, flags=re.S)
    assert block, "README has no typical session"
    return [ln.split("#", 1)[0].strip() for ln in block.group(1).splitlines() if ln.strip()]


def test_the_session_names_every_job():
    verbs = [ln.split()[1] for ln in session_lines()]
    assert verbs == ["score", "collect", "personalize", "profile", "cull", "score", "retouch"]


def _photos(folder: Path, n: int, seed: int, burst: bool = False) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    scene = synthetic_photo(rng, 128, 96)
    for i in range(n):
        if not burst or i % 3 == 0:
            scene = synthetic_photo(rng, 128, 96)
        # bursts of three: the same scene, a little darker each frame
        img = Image.eval(scene, lambda v, k=i % 3 if burst else 0: int(v * (1 - 0.08 * k)))
        img.save(folder / f"IMG_{i:04d}.jpg", quality=90)


def _post(path: str, body: dict) -> dict:
    req = urllib.request.Request(
        COLLECT_URL + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Origin": COLLECT_URL},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _collect(line: str, env: dict, cwd: Path, clicks: int) -> None:
    proc = subprocess.Popen(["bash", "-c", "exec " + line], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(COLLECT_URL + "/api/state", timeout=5).read()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "piaa collect did not start"
                time.sleep(0.5)
        album = Path(env["HOME"]) / "Pictures" / "2024"

        def brightness(name: str) -> float:
            return float(np.asarray(Image.open(album / name).convert("L")).mean())

        for _ in range(clicks):  # a person who always prefers the brighter photo
            pair = _post("/api/pair", {})["pair"]
            left, right = pair["left"]["name"], pair["right"]["name"]
            a, b = sorted((left, right), key=brightness, reverse=True)
            _post("/api/choose", {"preferred": a, "other": b})
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_readme_session_runs_as_written(tmp_path):
    home = tmp_path / "home"
    pictures = home / "Pictures"
    _photos(pictures / "2024", 16, seed=1)
    _photos(pictures / "2025", 24, seed=2)
    _photos(pictures / "shoot", 12, seed=3, burst=True)
    work = tmp_path / "work"
    work.mkdir()
    bindir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(home), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    assert shutil.which("piaa", path=env["PATH"]), "the piaa command is not installed beside this Python"
    for line in session_lines():
        if line.split()[1] == "collect":
            _collect(line, env, work, clicks=12)
            continue
        res = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True,
                             timeout=900)  # fmt: skip
        assert res.returncode == 0, f"{line}\n{res.stdout}\n{res.stderr}"
    assert (work / "me.sqlite").is_file() and (work / "me" / "config.json").is_file()
    assert (work / "me-explained" / "index.html").is_file()
    assert json.loads((work / "me-explained" / "explanation.json").read_text())
    rows = (work / "cull.csv").read_text().splitlines()
    assert len(rows) == 13 and rows[0].startswith("path,")
    assert len(list((pictures / "shoot").glob("*.jpg.xmp"))) == 12
    best = sorted(p.name for p in (work / "best").iterdir())
    assert len(best) == 20 and len((work / "best.csv").read_text().splitlines()) == 21
    retouched = [p for p in (work / "retouched").rglob("*.jpg")]
    assert len(retouched) >= 20
    for p in retouched:
        with Image.open(p) as im:
            im.load()
