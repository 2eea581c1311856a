"""Shared machinery for every paper: data, models, Lightning plumbing, optimizer helpers, results."""
