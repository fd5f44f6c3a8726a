"""Repository-wide pytest set-up: the shared fixtures live in libs/testing."""

pytest_plugins = ["sentinel.testing.plugin"]
