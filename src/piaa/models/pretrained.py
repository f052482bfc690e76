"""Profiles that ship with piaa and need no reference corpus or preferences (see ``list_pretrained``)."""

from __future__ import annotations
