"""Helpers shared by several test modules (test modules import from here, never from
each other). ``tests/conftest.py`` holds the fixtures; this package the plain code."""
