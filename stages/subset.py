"""Stage `subset`: the M examples pretraining sees (all, random class-balanced, easiest or hardest by EL2N or by
forgetting score)."""

import typer

from lthlib.analyses.subsets import (
    LabelNoise,
    choose_subset,
    ranking_scores,
    subset_size,
    subset_summary,
    subset_table,
)
from lthlib.cli import user_errors_exit
from lthlib.core import io
from lthlib.core.config import load_config
from lthlib.core.data import load_dataset
from lthlib.report.el2n import write_el2n_page


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", noise: str = "data/noise.pt",
         scores: str = "data/el2n/scores.csv", out: str = "data/subset.csv", metrics: str = "reports/subset.json",
         figures: str = "reports/el2n"):
    config = load_config(params)
    data = load_dataset(dataset, "cpu")  # a streamed training split stays files: the page decodes its examples
    labels, table = LabelNoise(**io.load_tensors(noise)), io.load_csv(scores)
    count = subset_size(config.subset.size, len(labels.labels))
    indices = choose_subset(config.subset.kind, count, labels.labels, ranking_scores(config.subset.kind, table),
                            config.subset.seed)
    chosen = subset_table(indices, table, labels, data.train_y)
    io.save_csv(chosen, out)
    io.save_json(subset_summary(config.subset.kind, config.subset.size, chosen, len(labels.labels),
                                data.num_classes), metrics)
    write_el2n_page(figures, table, labels.corrupted, data.train_x, data.train_y, data.classes,
                    config.subset.kind)

if __name__ == "__main__":
    typer.run(main)
