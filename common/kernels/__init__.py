"""common.kernels"""
