"""Activate: consent-safe audiences and exports (a later stage; nothing here yet)."""
