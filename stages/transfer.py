"""Stage `transfer`: frozen tickets and the trained dense network with a new linear head on the target dataset,
against a dense network trained there from scratch (nothing when `transfer.name` is null)."""

import pandas as pd
import typer

from lthlib.analyses.probes import TRANSFER_COLUMNS, transfer_tickets
from lthlib.analyses.tickets import load_tickets
from lthlib.cli import load_stage_inputs, training_stage, user_errors_exit
from lthlib.core import io
from lthlib.core.data import load_dataset


@user_errors_exit
@training_stage
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", target: str = "data/transfer.pt",
         pretrained: str = "data/pretrain", imp: str = "data/selected/tickets", out: str = "reports/transfer.csv"):
    config, device, data = load_stage_inputs(params, dataset)
    table = pd.DataFrame(columns=TRANSFER_COLUMNS)
    tickets = load_tickets(config, pretrained, imp)
    if config.transfer.name is not None and tickets.masks:
        solutions = [io.load_tensors(io.level_dir(imp, r, 0) / "final.pt") for r in range(tickets.replicates)]
        table = transfer_tickets(tickets, solutions, data, load_dataset(target, device), config.probes,
                                 config.train, config.data.augment, config.compute.vectorize, device)
    io.save_csv(table, out)


if __name__ == "__main__":
    typer.run(main)
