"""Attribute: cross-device journeys and channel credit (a later stage; nothing here yet)."""
