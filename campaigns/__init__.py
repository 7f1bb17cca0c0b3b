"""Campaigns, categories, units, staff accounts and login."""
