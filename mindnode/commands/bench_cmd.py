"""``mindnode bench``: run the provider benchmark alone and print it (a table, or ``--json``)."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--seconds", type=float, default=1.0, show_default=True, help="Time spent timing each device.")
@click.option("--size", "n", type=int, default=512, show_default=True, help="Matrix size of the timed matmul.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench(seconds: float, n: int, as_json: bool) -> None:
    """Measure what this machine can lend: float32 matmul throughput on the CPU (and each CUDA GPU),
    memory, GPU model; derive the hardware class and score a provider registers with."""
    from mindnode.jobs.benchmark import run

    r = run(seconds, n)
    if as_json:
        click.echo(json.dumps(r.to_dict(), sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="mindnode bench", title_justify="left")
    for col in ("device", "name", "GFLOP/s", "matmul n", "runs", "memory", "threads"):
        t.add_column(col)
    for d in [r.cpu, *r.gpus]:
        t.add_row(d.device, d.name, f"{d.gflops:,.1f}", str(d.matmul_n), str(d.runs),
                  f"{d.memory_bytes / (1 << 30):.1f} GiB", str(d.threads or "-"))
    con = Console()
    con.print(t)
    con.print(f"hardware class [bold]{r.hardware_class}[/bold], score [bold]{r.score}[/bold] "
              f"(torch {r.torch_version}, {r.cpu_count} CPUs)")
