"""Tests of the collect stage's silver transforms."""
