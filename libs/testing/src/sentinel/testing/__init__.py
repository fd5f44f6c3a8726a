"""Test fixtures shared by every Sentinel package: real stores, in-process servers, span capture."""
