"""common.optim"""
