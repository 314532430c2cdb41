"""The pipeline stages: one Typer command per DVC stage (params in, files out), and the `miga` CLI (cli.py)."""
