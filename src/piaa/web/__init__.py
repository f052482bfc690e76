"""The preference-collection web app behind ``piaa collect`` (paper Fig. 3): two photos side by side,
click or press an arrow key for the one you prefer; every judgement goes straight into the store."""

from __future__ import annotations

from piaa.web.app import CollectConfig, check_port, create_app, serve

__all__ = ["CollectConfig", "check_port", "create_app", "serve"]
