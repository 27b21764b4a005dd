"""Stage `el2n`: EL2N score of every training example (against its possibly randomized label), computed
only when `subset.kind` ranks by it (easy, hard); otherwise the scores are left empty, at no cost."""

import dataclasses

import typer

from lthlib.analyses.el2n import compute_el2n, scores_needed, scores_table
from lthlib.analyses.subsets import LabelNoise
from lthlib.cli import load_stage_inputs, user_errors_exit
from lthlib.core import io
from lthlib.report.el2n import plot_el2n_histograms, plot_not_computed


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", noise: str = "data/noise.pt",
         out: str = "data/el2n", figure: str = "reports/el2n_histograms.png"):
    config, device, data = load_stage_inputs(params, dataset)
    labels = LabelNoise(**io.load_tensors(noise))
    norms = None
    if scores_needed(config.subset.kind):
        data = dataclasses.replace(data, train_y=labels.labels.to(device))  # Appendix A
        norms = compute_el2n(data, config.model.name, config.train, config.el2n.networks, config.el2n.steps,
                             config.seed, device, config.data.augment, config.compute.vectorize)
    table = scores_table(norms, labels.labels)
    with io.atomic_dir(out) as folder:
        io.save_csv(table, folder / "scores.csv")
    if norms is None:
        plot_not_computed(figure, f"EL2N scores are computed only for subset.kind easy or hard "
                                  f"(here: {config.subset.kind})")
    else:
        plot_el2n_histograms(table, labels.corrupted, data.classes, figure)


if __name__ == "__main__":
    typer.run(main)
