"""Nominations, the review workflow and the public nominee listing."""
