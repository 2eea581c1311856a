"""common.quant"""
