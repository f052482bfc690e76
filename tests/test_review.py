"""The review page through its HTTP API: groups, corrections stored as preferences, safety, durability,
and 'Update my profile' retraining from the store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import synthetic_photo
from piaa.cli.main import app as cli_app
from piaa.preferences import PreferenceStore
from piaa.web.review import ReviewConfig, create_review_app, load_results

GROUPS = [["a1.jpg", "a2.jpg", "a3.jpg"], ["b1.jpg", "b2.jpg"], ["c1.jpg"]]


def write_shoot(tmp_path: Path) -> tuple[Path, Path]:
    """A shoot folder (plus a photo that was not culled) and its cull results, as ``piaa cull --output``
    writes them: groups 0-based, ranks 1-based, the first of each group the pick, b2 flagged."""
    rng = np.random.default_rng(1)
    shoot = tmp_path / "shoot"
    (shoot / "day 2").mkdir(parents=True)
    rows = []
    for g, names in enumerate(GROUPS):
        for rank, name in enumerate(names, 1):
            path = shoot / ("day 2" if g == 2 else "") / name
            synthetic_photo(rng).save(path)
            rows.append({
                "path": str(path), "group": g, "rank": rank, "status": "pick" if rank == 1 else "alternate",
                "score": 6.0 - rank, "flags": ["blurred"] if name == "b2.jpg" else [],
                "capture_time": "2024-05-01T10:00:00", "time_source": "exif", "rating": 3,
            })  # fmt: skip
    synthetic_photo(rng).save(shoot / "not-culled.jpg")
    results = tmp_path / "cull.json"
    results.write_text(json.dumps(rows))
    return shoot, results


@pytest.fixture
def shoot(tmp_path: Path) -> dict:
    folder, results = write_shoot(tmp_path)
    return {"folder": folder, "results": results, "store": tmp_path / "me.sqlite", "out": tmp_path / "me"}


def client_for(shoot: dict, **kw) -> TestClient:
    cfg = ReviewConfig(
        results=shoot["results"], store=shoot["store"], profile="nima-ava", out=shoot["out"], **kw
    )
    return TestClient(create_review_app(cfg), base_url="http://127.0.0.1")


def names(group: dict) -> list[str]:
    return [f["name"] for f in group["frames"]]


def test_groups_are_listed_best_first_with_picks_and_flags(shoot):
    with client_for(shoot) as c:
        res = c.get("/api/groups").json()
    groups = res["groups"]
    assert [names(g) for g in groups] == [
        ["a1.jpg", "a2.jpg", "a3.jpg"],
        ["b1.jpg", "b2.jpg"],
        ["day 2/c1.jpg"],
    ]
    assert [f["status"] for f in groups[0]["frames"]] == ["pick", "alternate", "alternate"]
    assert groups[1]["frames"][1]["flags"] == ["blurred"]
    assert res["state"]["groups"] == 3 and res["state"]["judgements"] == 0


def test_each_correction_is_stored_at_once_as_cull_preferences(shoot):
    folder = shoot["folder"]
    with client_for(shoot) as c:
        res = c.post("/api/choose", json={"group": 0, "name": "a3.jpg"}).json()
        assert res["stored"] == 2 and names(res["group"]) == ["a3.jpg", "a1.jpg", "a2.jpg"]
        with PreferenceStore(shoot["store"], readonly=True) as s:  # durable before the answer came
            assert [(j.pair, j.source) for j in s.judgements()] == [
                ((f"{folder}/a3.jpg", f"{folder}/a1.jpg"), "cull"),
                ((f"{folder}/a3.jpg", f"{folder}/a2.jpg"), "cull"),
            ]
        res = c.post("/api/reject", json={"group": 0, "name": "a1.jpg"}).json()
        assert res["stored"] == 2 and names(res["group"])[-1] == "a1.jpg"
        assert res["group"]["frames"][-1]["status"] == "reject"
        res = c.post("/api/accept", json={"group": 1}).json()
        assert res["stored"] == 1 and res["group"]["accepted"]
        assert res["state"]["by_source"] == {"cull": 5}
    with PreferenceStore(shoot["store"], readonly=True) as s:
        assert (f"{folder}/a2.jpg", f"{folder}/a1.jpg") in s.pairs()
        assert (f"{folder}/b1.jpg", f"{folder}/b2.jpg") in s.pairs()


def test_only_the_culled_photos_are_served_and_only_same_origin_json_changes_anything(shoot):
    with client_for(shoot) as c:
        assert c.get("/img/a1.jpg?size=thumb").headers["content-type"] == "image/jpeg"
        assert c.get("/img/day%202/c1.jpg").status_code == 200
        for bad in (
            "/img/not-culled.jpg",
            "/img/../cull.json",
            "/img/%2e%2e/cull.json",
            "/img/" + "x" * 5000,
        ):
            assert c.get(bad).status_code == 404, bad
        assert c.post("/api/choose", json={"group": 9, "name": "a1.jpg"}).status_code == 404
        r = c.post("/api/choose", json={"group": 1, "name": "a1.jpg"})  # a photo of another group
        assert r.status_code == 404 and "not a photo of group 1" in r.json()["detail"]
        r = c.post(
            "/api/reject", json={"group": 0, "name": "a2.jpg"}, headers={"Origin": "http://evil.example"}
        )
        assert r.status_code == 403
        r = c.post("/api/accept", content='{"group": 0}', headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        assert c.get("/api/groups", headers={"Host": "evil.example"}).status_code == 400
        assert c.post("/api/update", json={}).status_code == 409  # nothing to learn from yet
    with PreferenceStore(shoot["store"], readonly=True) as s:
        assert len(s) == 0


def test_another_site_cannot_embed_the_review_page_photos_or_call_its_api(shoot):
    """The same protections as collect's (one ``harden``): Fetch Metadata marks a foreign page's request."""
    with client_for(shoot) as c:
        for site in ("cross-site", "same-site"):
            assert c.get("/img/a1.jpg", headers={"Sec-Fetch-Site": site}).status_code == 403
            assert c.get("/api/groups", headers={"Sec-Fetch-Site": site}).status_code == 403
        assert c.get("/img/a1.jpg", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        assert c.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # a link to it is fine


def test_bad_results_are_one_line_errors(tmp_path):
    for text, problem in [
        ("{", "not JSON"),
        ("path,group\na.jpg,0\n", "reads JSON rows: piaa cull --output F.json"),  # the CSV rows given
        ("[]", "non-empty list"),
        ('[{"path": "x"}]', "row 1"),
    ]:
        f = tmp_path / "r.json"
        f.write_text(text)
        with pytest.raises(ValueError, match=problem):
            load_results(f)
    _, results = write_shoot(tmp_path)
    store = str(tmp_path / "s.sqlite")
    for extra, problem in [
        (["--profile", "no-such"], "no-such: not a profile folder nor a built-in profile"),
        (["--profile", "nima-ava", "--out", str(results)], "cull.json: exists and is not a folder"),
    ]:
        res = CliRunner().invoke(cli_app, ["review", "--results", str(results), "--store", store, *extra])
        assert res.exit_code == 2 and problem in res.output, res.output
        assert "Traceback" not in res.output
    cfg = ReviewConfig(results=results, store=tmp_path / "s.sqlite", profile="nima-ava")
    assert cfg.target() == tmp_path / "s-profile"  # a built-in profile is updated beside the store


def test_cull_results_are_reviewed_from_any_folder(tmp_path, monkeypatch):
    """``piaa cull shoot --output r.json`` run beside the shoot, reviewed from another folder: the rows
    carry absolute paths, so review finds the photos (it used to look for them from its own folder)."""
    folder, _ = write_shoot(tmp_path)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        cli_app, ["cull", "shoot", "--profile", "nima-ava", "--no-eyes", "--output", "r.json"]
    )
    assert res.exit_code == 0 and "wrote 7 rows to r.json" in res.output, res.output
    rows = json.loads((tmp_path / "r.json").read_text())
    assert {r["path"] for r in rows} == {str(p) for p in folder.rglob("*.jpg")}  # absolute
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = ReviewConfig(results=Path("../r.json"), store=Path("me.sqlite"), profile="nima-ava", out=Path("me"))
    with TestClient(create_review_app(cfg), base_url="http://127.0.0.1") as c:
        groups = c.get("/api/groups").json()["groups"]
        shown = sorted(n for g in groups for n in names(g))
        assert shown == ["a1.jpg", "a2.jpg", "a3.jpg", "b1.jpg", "b2.jpg", "day 2/c1.jpg", "not-culled.jpg"]
        assert c.post("/api/accept", json={"group": 0}).status_code == 200
    with PreferenceStore(tmp_path / "elsewhere" / "me.sqlite", readonly=True) as s:
        assert all(Path(a).is_relative_to(folder) and Path(b).is_relative_to(folder) for a, b in s.pairs())


def test_older_results_with_relative_paths_are_found_beside_them(shoot, tmp_path, monkeypatch):
    """Results written by an older piaa hold the paths as typed on cull's command line, relative to where
    it ran: review tries them from the results' folder when its own does not hold them, and names the
    results file in one line when neither does."""
    folder, results = shoot["folder"], shoot["results"]
    rows = json.loads(results.read_text())
    for r in rows:
        r["path"] = os.path.relpath(r["path"], tmp_path)  # shoot/a1.jpg: cull ran beside the results
    results.write_text(json.dumps(rows))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with client_for(shoot) as c:
        assert [names(g) for g in c.get("/api/groups").json()["groups"]][0] == GROUPS[0]
        c.post("/api/choose", json={"group": 0, "name": "a2.jpg"})
    with PreferenceStore(shoot["store"], readonly=True) as s:
        assert s.pairs() == [(f"{folder}/a2.jpg", f"{folder}/a1.jpg")]  # absolute, as always
    (folder / "a2.jpg").unlink()
    with pytest.raises(ValueError, match=r"cull\.json: row 2: shoot/a2\.jpg: photo not found \(tried from"):
        load_results(results)
    res = CliRunner().invoke(
        cli_app,
        ["review", "--results", str(results), "--store", str(shoot["store"]), "--profile", "nima-ava"],
    )
    assert res.exit_code == 2 and f"{results}: row 2: shoot/a2.jpg: photo not found" in res.output, res.output


def wait_done(c: TestClient, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = c.get("/api/update").json()
        if st["state"] != "running":
            return st
        assert time.monotonic() < deadline, "update did not finish"
        time.sleep(0.1)


@pytest.mark.slow
def test_update_my_profile_retrains_from_the_store_and_reranks(shoot):
    folder = shoot["folder"]
    with PreferenceStore(shoot["store"]) as s:  # a collect pair, album-relative as collect stores it
        s.add("b2.jpg", "a2.jpg", source="collect")
    with client_for(shoot) as c:
        c.post("/api/choose", json={"group": 0, "name": "a3.jpg"})
        c.post("/api/reject", json={"group": 1, "name": "b1.jpg"})
        assert c.post("/api/update", json={}).status_code == 202
        st = wait_done(c)
        assert st["state"] == "done", st
        assert st["judgements"] == 4 and st["unmatched"] == 0  # 2 + 1 corrections, 1 collect pair
        groups = c.get("/api/groups").json()["groups"]
        assert names(groups[0])[0] == "a3.jpg"  # the photographer's pick stays first
        assert names(groups[1]) == ["b2.jpg", "b1.jpg"]  # and the reject last
        scores = {f["name"]: f["score"] for g in groups for f in g["frames"]}
        assert scores["a3.jpg"] != 4.0  # re-scored by the new profile, not the cull's scores
    from piaa.models.profile import load_profile

    prof = load_profile(shoot["out"])
    assert prof.generic() is not None  # carries its generic model forward for the next update
    assert (f"{folder}/a3.jpg".removeprefix(f"{folder}/"), "a1.jpg") in prof.pairs


def save_profile(folder: Path, pairs: list[tuple[str, str]]) -> None:
    """nima-ava saved as a profile trained on ``pairs``, as ``personalize`` records it (no training)."""
    from piaa.models.profile import Profile, load_profile

    base = load_profile("nima-ava")
    data = {"pairs_stated": len(pairs)}
    Profile(base.head, base.backbone, {"data": data}, pairs=pairs, generic_head=base.head).save(folder)


def test_an_update_that_would_learn_less_keeps_the_profile_and_says_why(shoot):
    """The store's 20 pairs name photos of another album (a profile was trained on them there); an update
    from the shoot alone would learn from 3 corrections and replace it. It is refused at once, naming both
    counts, the unused judgements and the remedies, and the profile stays byte for byte."""
    other = [(f"other/{i}.jpg", f"other/{i + 1}.jpg") for i in range(20)]
    with PreferenceStore(shoot["store"]) as s:
        s.add_many(other, source="collect")
    save_profile(shoot["out"], other)
    before = {p.name: p.read_bytes() for p in shoot["out"].iterdir()}
    with client_for(shoot) as c:
        c.post("/api/choose", json={"group": 0, "name": "a3.jpg"})
        c.post("/api/reject", json={"group": 1, "name": "b1.jpg"})
        assert c.post("/api/update", json={}).status_code == 202
        st = wait_done(c, timeout=10)  # from the names alone: nothing trained
        assert st["state"] == "refused", st
        assert (st["judgements"], st["unmatched"], st["previous"]) == (3, 20, 20)
        assert st["message"] == (
            f"kept {shoot['out']}: it was trained on 20 judgements, this update would train on only 3; not "
            f"used: 20 stored judgements naming photos outside {shoot['folder']} (open piaa review again "
            "with --album FOLDER holding those photos and the shoot, or with --out FOLDER to save this "
            "update elsewhere)"
        )
        scores = {f["name"]: f["score"] for g in c.get("/api/groups").json()["groups"] for f in g["frames"]}
        assert scores["a3.jpg"] == 3.0  # not re-ranked: the cull's scores
        assert c.post("/api/update", json={}).status_code == 202  # may be asked again (more corrections)
        assert wait_done(c, timeout=10)["state"] == "refused"
    assert {p.name: p.read_bytes() for p in shoot["out"].iterdir()} == before


def test_an_update_that_learns_as_much_replaces_the_profile_and_names_the_unused(shoot):
    """The normal update: the profile at --out was trained on 3 pairs, the shoot's corrections give 3, so
    it is replaced; the store's pairs of another album are counted and named on the page."""
    with PreferenceStore(shoot["store"]) as s:
        s.add_many([(f"other/{i}.jpg", f"other/{i + 1}.jpg") for i in range(5)], source="collect")
    save_profile(shoot["out"], [("x.jpg", "y.jpg"), ("y.jpg", "z.jpg"), ("x.jpg", "z.jpg")])
    with client_for(shoot) as c:
        c.post("/api/choose", json={"group": 0, "name": "a3.jpg"})
        c.post("/api/reject", json={"group": 1, "name": "b1.jpg"})
        assert c.post("/api/update", json={}).status_code == 202
        st = wait_done(c)
        assert st["state"] == "done", st
        assert (st["judgements"], st["unmatched"]) == (3, 5)
        assert st["message"] == (
            f"profile saved to {shoot['out']}; not used: 5 stored judgements naming photos outside "
            f"{shoot['folder']} (to include them, open piaa review again with --album FOLDER holding those "
            "photos and the shoot)"
        )
    from piaa.models.profile import load_profile

    assert ("a3.jpg", "a1.jpg") in load_profile(shoot["out"]).pairs


def test_photos_unreadable_at_training_that_leave_fewer_pairs_keep_the_profile(shoot):
    """The names promise 3 pairs, but a3 cannot be read when training: 1 pair is left, fewer than the 3
    the profile was trained on, so it is kept (checked again after training, before anything is saved)."""
    save_profile(shoot["out"], [("x.jpg", "y.jpg"), ("y.jpg", "z.jpg"), ("x.jpg", "z.jpg")])
    before = {p.name: p.read_bytes() for p in shoot["out"].iterdir()}
    with client_for(shoot) as c:
        c.post("/api/choose", json={"group": 0, "name": "a3.jpg"})
        c.post("/api/reject", json={"group": 1, "name": "b1.jpg"})
        (shoot["folder"] / "a3.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
        assert c.post("/api/update", json={}).status_code == 202
        st = wait_done(c)
        assert st["state"] == "refused" and (st["judgements"], st["previous"]) == (1, 3), st
        assert "it was trained on 3 judgements, this update would train on only 1" in st["message"]
    assert {p.name: p.read_bytes() for p in shoot["out"].iterdir()} == before


@pytest.mark.slow
def test_review_server_killed_mid_session_loses_nothing(shoot):
    """`piaa review` in its own process, SIGKILLed right after four corrections: all are in the store."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable, "-m", "piaa.cli.main", "review", "--results", str(shoot["results"]),
        "--store", str(shoot["store"]), "--profile", "nima-ava", "--out", str(shoot["out"]),
        "--port", str(port),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stored = 0
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/api/groups", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        for path, body in [
            ("choose", {"group": 0, "name": "a2.jpg"}),
            ("reject", {"group": 0, "name": "a3.jpg"}),
            ("accept", {"group": 1}),
            ("choose", {"group": 1, "name": "b2.jpg"}),
        ]:
            r = httpx.post(f"{base}/api/{path}", json=body)
            r.raise_for_status()
            stored += r.json()["stored"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    assert stored == 1 + 2 + 1 + 1
    with PreferenceStore(shoot["store"]) as s:
        assert len(s) == stored and s.sources() == {"cull": stored}


def test_corrections_rewrite_the_xmp_sidecars_read_back_by_exiftool(shoot):
    """With --xmp, a changed pick and a reject rewrite the sidecars of the frames whose status changed;
    the sidecar's other properties survive the merge."""
    import shutil

    from piaa.cull.xmp import write_sidecar
    from piaa.web.review import XmpSettings

    folder = shoot["folder"]
    for name, rating, label, pick in [
        ("a1.jpg", 3, "Green", 3),
        ("a2.jpg", 0, None, 2),
        ("a3.jpg", 0, None, 2),
    ]:
        write_sidecar(folder / name, rating, label, pick)  # as piaa cull --xmp wrote them
    a2 = folder / "a2.jpg.xmp"
    a2.write_text(
        a2.read_text().replace(
            "<rdf:Description ",
            '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="kept" ',
            1,
        )
    )
    untouched = (folder / "a2.jpg.xmp").read_bytes()
    with client_for(shoot, xmp=XmpSettings()) as c:
        res = c.post("/api/choose", json={"group": 0, "name": "a3.jpg"}).json()
        assert res["sidecar_problems"] == []
        assert (folder / "a2.jpg.xmp").read_bytes() == untouched  # still an alternate: not rewritten
        res = c.post("/api/reject", json={"group": 0, "name": "a2.jpg"}).json()
        assert res["sidecar_problems"] == []
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool is not installed (apt-get install libimage-exiftool-perl)")
    out = subprocess.run(
        [exiftool, "-j", "-XMP:Rating", "-XMP:Label", "-XMP-digiKam:PickLabel", "-XMP-dc:Format",
         *(str(folder / f"{n}.xmp") for n in ("a1.jpg", "a2.jpg", "a3.jpg"))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    got = {Path(d["SourceFile"]).name: d for d in json.loads(out)}
    assert got["a3.jpg.xmp"]["Rating"] == 3 and got["a3.jpg.xmp"]["Label"] == "Green"
    assert got["a3.jpg.xmp"]["PickLabel"] == 3
    assert got["a1.jpg.xmp"]["Rating"] == 0 and "Label" not in got["a1.jpg.xmp"]
    assert got["a1.jpg.xmp"]["PickLabel"] == 2
    assert got["a2.jpg.xmp"]["Rating"] == -1 and got["a2.jpg.xmp"]["Label"] == "Red"
    assert got["a2.jpg.xmp"]["PickLabel"] == 1 and got["a2.jpg.xmp"]["Format"] == "kept"


def test_cull_review_needs_a_store(shoot):
    res = CliRunner().invoke(cli_app, ["cull", str(shoot["folder"]), "--profile", "nima-ava", "--review"])
    assert res.exit_code == 2 and "--review needs --store" in res.output, res.output
