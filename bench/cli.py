"""Command line (placeholder, filled in below)."""
import typer

app = typer.Typer()
