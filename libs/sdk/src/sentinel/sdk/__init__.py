"""Python client SDK and the `sentinel` command line."""
