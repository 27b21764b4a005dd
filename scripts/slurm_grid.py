"""A grid of DVC experiments as one Slurm job array: one experiment per array task, on any node.

    python scripts/stability_grid.py run --dry-run > grid.txt        # any grid's `dvc exp run` lines
    bash scripts/data_diet_grid.sh print > grid.txt                    # (or write them by hand)
    python scripts/slurm_grid.py submit grid.txt --git-remote /shared/lthlib.git --dvc-remote /shared/dvc \\
        --work /shared/lthlib-work --venv /shared/lthlib-venv
    python scripts/slurm_grid.py collect grid.txt --git-remote /shared/lthlib.git --dvc-remote /shared/dvc \\
        --report stability                                            # pull the runs, write the cross-run report

`submit` pushes the committed HEAD to the bare Git repository `--git-remote` and the workspace's DVC
outputs (with the run cache) to the DVC remote `--dvc-remote` (a folder every node sees, or any DVC
remote URL), then submits the array. Each task (scripts/slurm_task.sh) clones the repository into
`--work`/runs/<experiment>, pulls the dataset, runs its line, and pushes the experiment (`dvc exp push`:
its Git ref and its outputs). A task that is killed (preemption, time limit) and requeued or resubmitted
(`submit --tasks 3`) finds its clone again and IMP resumes at its first unfinished level: keep `--work`
on storage that outlives a job. `collect` runs `dvc exp pull` for every experiment of the file into
this workspace and, with `--report`, the grid's own collect step.

One experiment can also train across several nodes: `submit --nodes M --gpus-per-node G` gives each task M x G
Slurm tasks, and a line with `-S compute.processes=auto` trains each network in M x G data-parallel processes
(the stage starts them with `srun`; lthlib.core.distributed). `--tasks-per-node N` does the same with N CPU
processes (gloo) per node.
"""

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
REMOTE = "lthlib-grid"  # the DVC remote's name in this workspace and in every task's clone
REPORTS = {"stability": ["python", "scripts/stability_grid.py", "collect"],
           "data_diet": ["bash", "scripts/data_diet_grid.sh", "collect"],
           "adaptive": ["bash", "scripts/compare_adaptive.sh", "collect"]}
app = typer.Typer(add_completion=False)


class GridError(Exception):
    """Bad input to the grid script: printed as one `error:` line (typer's box wraps it over several)."""


def experiment_names(commands: Path) -> list[str]:
    """The experiment name of every line of `commands` (each a `dvc exp run -n NAME ...` without --queue)."""
    if not commands.exists():
        raise GridError(f"{commands} does not exist")
    names = []
    for number, line in enumerate(commands.read_text().splitlines(), 1):
        words = shlex.split(line)
        if words[:3] != ["dvc", "exp", "run"] or "-n" not in words[:-1] or "--queue" in words:
            raise GridError(f"{commands}:{number} must be `dvc exp run -n NAME ...` without --queue, "
                                     f"got {line!r}")
        names.append(words[words.index("-n") + 1])
    if not names or len(set(names)) != len(names):
        raise GridError(f"{commands} must hold at least one experiment, each with its own name")
    return names


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def dvc(*args: str) -> None:
    subprocess.run(["dvc", *args], cwd=ROOT, check=True)


@app.command()
def submit(commands: Path, git_remote: str = typer.Option(..., help="a bare Git repository every node reaches"),
           dvc_remote: str = typer.Option(..., help="a DVC remote every node reaches (a shared folder, s3://...)"),
           work: Path = typer.Option(..., help="shared folder for the tasks' clones and logs (must outlive a job)"),
           venv: str = typer.Option("", help="a virtualenv with lthlib's dependencies on every node; "
                                             "empty: each clone runs scripts/setup.sh --no-data"),
           tasks: str = typer.Option("", help="only these array indices (e.g. 1,3 or 0-2): resubmit killed tasks"),
           cpus: int = typer.Option(1, help="--cpus-per-task (match compute.threads of the lines)"),
           gpus: int = typer.Option(0, help="--gpus-per-task; Slurm gives each task its own CUDA_VISIBLE_DEVICES"),
           nodes: int = typer.Option(1, help="nodes per experiment: one training across all of them (data parallel; "
                                             "lines set -S compute.processes=auto)"),
           gpus_per_node: int = typer.Option(0, help="GPUs per node of such an experiment, one process each"),
           tasks_per_node: int = typer.Option(0, help="processes per node (default: --gpus-per-node, else 1); "
                                                      "on CPUs, data-parallel gloo workers"),
           sbatch_args: str = typer.Option("", help="more sbatch options, e.g. '--time 1-0 --partition gpu'")):
    names = experiment_names(commands)
    if gpus and (gpus_per_node or nodes > 1 or tasks_per_node):
        raise GridError("--gpus (one GPU job per experiment) and --nodes/--gpus-per-node/--tasks-per-node (one "
                        "experiment across GPUs) exclude each other")
    tasks_per_node = tasks_per_node or gpus_per_node or 1
    spanning = [f"--nodes={nodes}", f"--ntasks-per-node={tasks_per_node}",
                *([f"--gpus-per-node={gpus_per_node}"] if gpus_per_node else [])]
    if git("status", "--porcelain", "--untracked-files=no"):
        raise GridError("the workspace has uncommitted changes: commit them (the tasks run HEAD)")
    commit = git("rev-parse", "HEAD")
    git("push", "-q", git_remote, f"HEAD:refs/heads/grid-{commit[:12]}")
    dvc("remote", "add", "--local", "--force", REMOTE, dvc_remote)
    dvc("push", "-q", "-r", REMOTE, "--run-cache")
    (work.resolve() / "grids").mkdir(parents=True, exist_ok=True)  # a folder per submission: its own commands
    grid = Path(tempfile.mkdtemp(prefix=f"{commit[:12]}-", dir=work.resolve() / "grids"))
    (grid / "logs").mkdir()
    (grid / "commands.txt").write_text(commands.read_text())
    environment = {"LTHLIB_GIT_REMOTE": git_remote, "LTHLIB_DVC_REMOTE": dvc_remote, "LTHLIB_COMMIT": commit,
                   "LTHLIB_COMMANDS": str(grid / "commands.txt"), "LTHLIB_WORK": str(work.resolve()),
                   "LTHLIB_VENV": venv}
    command = ["sbatch", "--parsable", "--requeue", f"--array={tasks or f'0-{len(names) - 1}'}",
               "--job-name=lthlib-grid", f"--output={grid / 'logs' / '%a-%A.out'}", f"--cpus-per-task={cpus}",
               *([f"--gpus-per-task={gpus}"] if gpus else []), *spanning, *shlex.split(sbatch_args),
               "--export=ALL," + ",".join(f"{key}={value}" for key, value in environment.items()),
               str(ROOT / "scripts" / "slurm_task.sh")]
    job = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
    print(f"submitted job array {job}: {len(names)} experiment(s) of {commit[:12]}; logs in {grid / 'logs'}")


@app.command()
def collect(commands: Path, git_remote: str = typer.Option(...), dvc_remote: str = typer.Option(...),
            report: str = typer.Option("", help=f"then run the grid's collect step: {', '.join(REPORTS)}")):
    names = experiment_names(commands)
    if report and report not in REPORTS:
        raise GridError(f"--report must be one of {', '.join(REPORTS)}, got {report!r}")
    dvc("remote", "add", "--local", "--force", REMOTE, dvc_remote)
    dvc("exp", "pull", "-q", "-r", REMOTE, git_remote, *names)
    print(f"pulled {len(names)} experiment(s): dvc exp show lists them")
    if report:
        subprocess.run(REPORTS[report], cwd=ROOT, check=True)


if __name__ == "__main__":
    try:
        app()
    except GridError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except subprocess.CalledProcessError as error:
        print(f"error: {shlex.join(map(str, error.cmd))} failed with status {error.returncode}"
              f"{': ' + error.stderr.strip() if error.stderr else ''}", file=sys.stderr)
        raise SystemExit(2) from None
