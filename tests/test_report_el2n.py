import torch

from lthlib.analyses.el2n import scores_table
from lthlib.report.el2n import write_el2n_page


def page_inputs(count=40, classes=4):
    images = torch.rand(count, 1, 8, 8)
    labels = torch.arange(count) % classes
    corrupted = torch.zeros(count, dtype=torch.bool)
    corrupted[:3] = True
    return images, labels, corrupted, [f"class {c}" for c in range(classes)]


def test_without_scores_the_page_says_why_in_a_line_and_draws_nothing(tmp_path):
    images, labels, corrupted, classes = page_inputs()
    write_el2n_page(tmp_path / "el2n", scores_table(None, labels), corrupted, images, labels, classes, "all")
    assert sorted(p.name for p in (tmp_path / "el2n").iterdir()) == ["el2n.md"]
    text = (tmp_path / "el2n" / "el2n.md").read_text()
    assert "`subset.kind` is all" in text and ".png" not in text


def test_with_scores_the_page_shows_both_figures(tmp_path):
    images, labels, corrupted, classes = page_inputs()
    table = scores_table(None, labels).assign(score=torch.linspace(0, 1.4, len(labels)).numpy())
    write_el2n_page(tmp_path / "el2n", table, corrupted, images, labels, classes, "easy")
    names = sorted(p.name for p in (tmp_path / "el2n").iterdir())
    assert names == ["el2n.md", "examples.png", "histograms.png"]
    assert (tmp_path / "el2n" / "histograms.png").stat().st_size > 10_000
    assert "3 of them randomized" in (tmp_path / "el2n" / "el2n.md").read_text()
