"""The ``piaa`` command line."""

from piaa.cli.main import app, main

__all__ = ["app", "main"]
