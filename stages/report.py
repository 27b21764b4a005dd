"""Stage `report`: figures, metrics and the markdown report from the saved tables."""

from pathlib import Path

import typer

from lthlib.core import io
from lthlib.cli import user_errors_exit
from lthlib.core.config import load_config
from lthlib.report.imp import load_level_curves, write_imp_report
from lthlib.report.adaptive import sweep_metrics, sweep_section
from lthlib.report.landscape import landscape_section
from lthlib.report.stability import first_stable_section, forgetting_removal_section
from lthlib.report.tickets import ticket_metrics, tickets_section


@user_errors_exit
def main(params: str = "params.yaml", table: str = "reports/imp.csv", out: str = "reports",
         lmc_paths: str = "reports/lmc_paths.csv", lmc_pairs: str = "reports/lmc_pairs.csv",
         landscape: str = "reports/landscape.csv", grids: str = "data/landscape",
         instability: str = "reports/instability.csv", sweep: str = "reports/adaptive_sweep.csv",
         instability_paths: str = "reports/instability_paths.csv", first_stable: str = "reports/first_stable.csv",
         imp_dir: str = "data/imp", baselines: str = "reports/baselines.csv", probes: str = "reports/probes.csv",
         few_shot: str = "reports/few_shot.csv", transfer: str = "reports/transfer.csv",
         forgetting_removal: str = "reports/forgetting_removal.csv"):
    config = load_config(params)
    imp = io.load_csv(table)
    slices = {int(path.stem.split("_")[1]): io.load_npz(path) for path in sorted(Path(grids).glob("level_*.npz"))}
    section = landscape_section(config, imp, io.load_csv(lmc_paths), io.load_csv(lmc_pairs), io.load_csv(landscape),
                                slices, io.load_csv(instability), out)
    stability = first_stable_section(config, io.load_csv(first_stable), io.load_csv(instability_paths), out) + \
        forgetting_removal_section(config, io.load_csv(forgetting_removal))
    ticket_tables = [io.load_csv(path) for path in (baselines, probes, few_shot, transfer)]
    tickets = tickets_section(config, imp, *ticket_tables, out)
    sections, metrics = (section, stability, tickets), ticket_metrics(ticket_tables[0], ticket_tables[1], imp)
    if config.pruning.adaptive:
        sweeps = io.load_csv(sweep)
        sections, metrics = (sweep_section(sweeps, out), section, stability, tickets), {
            **metrics, **sweep_metrics(sweeps, imp)}
    write_imp_report(config, imp, out, sections, metrics, load_level_curves(imp_dir, imp))


if __name__ == "__main__":
    typer.run(main)
