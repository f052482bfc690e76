"""A person's pairwise preferences: the rules (contradictions, transitivity), CSV exchange, the store.

Kept free of torch so that it imports quickly (child processes, the web app's store).
"""

from __future__ import annotations

from piaa.preferences.exchange import (
    CSV_HEADER,
    is_sqlite_file,
    load_pairs,
    load_sources,
    load_statements,
    read_judgements_csv,
    read_pairs_csv,
    write_pairs_csv,
)
from piaa.preferences.rules import (
    Contradiction,
    Judgement,
    Pair,
    PreferenceError,
    enrich_transitive,
    enrich_transitive_with_sources,
    infer_transitive,
    match_names,
    normalize_name,
    resolve,
)
from piaa.preferences.store import SCHEMA_VERSION, PreferenceStore

__all__ = [
    "CSV_HEADER",
    "SCHEMA_VERSION",
    "Contradiction",
    "Judgement",
    "Pair",
    "PreferenceError",
    "PreferenceStore",
    "enrich_transitive",
    "enrich_transitive_with_sources",
    "infer_transitive",
    "is_sqlite_file",
    "load_pairs",
    "load_sources",
    "load_statements",
    "match_names",
    "normalize_name",
    "read_judgements_csv",
    "read_pairs_csv",
    "resolve",
    "write_pairs_csv",
]
