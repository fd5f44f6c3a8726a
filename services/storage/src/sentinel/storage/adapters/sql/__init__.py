"""Ordered SQL migrations, `NNNN_name.sql`, applied by `sentinel.storage.adapters.migrations`."""
