"""common.results"""
