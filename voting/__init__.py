"""Voter identity, the vote script, the ledger, counts, rankings and reconciliation."""
