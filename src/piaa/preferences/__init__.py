"""A person's pairwise preferences: the store, CSV exchange, contradiction rules and transitivity.

Kept free of torch so that it imports quickly (child processes, the web app's store)."""

from piaa.preferences.store import *  # noqa: F403
from piaa.preferences.store import __all__  # noqa: F401
