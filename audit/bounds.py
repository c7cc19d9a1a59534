"""Bounds of the run options, shared by the claim file (`Options`), `audit verify --seed/--resamples` and `verify()`.
A module of plain constants so the CLI can use them without importing the claim model (`audit --help` stays fast)."""

SEED_MAX = 2**63 - 1
RESAMPLES_MIN, RESAMPLES_MAX = 1000, 1_000_000
