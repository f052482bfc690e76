"""``python -m piaa.cli``."""

from piaa.cli.main import main

main()
