"""Stage `probes`: linear probes on the frozen, untrained tickets, their permuted-mask baselines and the dense
network at the rewind point."""

import typer

from lthlib.analyses.probes import probe_tickets
from lthlib.analyses.tickets import load_tickets
from lthlib.cli import load_stage_inputs, training_stage, user_errors_exit
from lthlib.core import io


@user_errors_exit
@training_stage
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", pretrained: str = "data/pretrain",
         imp: str = "data/selected/tickets", out: str = "reports/probes.csv"):
    config, device, data = load_stage_inputs(params, dataset)
    tickets = load_tickets(config, pretrained, imp)
    io.save_csv(probe_tickets(tickets, data, config.probes, config.compute.vectorize, device), out)


if __name__ == "__main__":
    typer.run(main)
