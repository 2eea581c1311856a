"""Triton kernels of the elementwise rules, one module per rule; imported only when impl='triton' runs.

Each kernel covers a whole bucket of tensors in one launch: :mod:`.launch` builds the pointer and block tables.
"""
