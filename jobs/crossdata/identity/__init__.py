"""Resolve: the identity graph that gives each person one stable customer key."""
