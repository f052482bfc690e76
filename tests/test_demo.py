"""The README's main job: the demo runs every stage and personalization helps the simulated person."""

import re

from piaa.demo import run


def test_demo_end_to_end(tmp_path):
    results = run(tmp_path / "demo", seed=0)
    assert results["personal_spearman"] > results["generic_spearman"] + 0.1
    assert results["personal_pairwise"] > results["generic_pairwise"]
    page = (tmp_path / "demo" / "report.html").read_text()
    thumbs = re.findall(r'<img src="([^"]+)"', page)
    assert len(thumbs) == 4 * 42 and all((tmp_path / "demo" / t).is_file() for t in thumbs)
    assert results["nima-ava personal_spearman"] > results["nima-ava_spearman"] + 0.1  # no reference needed
    for name in ("profile", "profile-generic", "profile-nima", "reference"):
        assert (tmp_path / "demo" / name).is_dir()
