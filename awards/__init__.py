"""Judging, combined results, finalisation, publicity, objections and exports."""
