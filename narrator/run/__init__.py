"""A job run end to end: plan and diff before anything is spent, preflight checks, the local run
(``pipeline``), the Ray run (``rayrun``), and the cache commands.
"""
