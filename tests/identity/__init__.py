"""Tests of the identity stage."""
