"""The `reproduce` command line."""
