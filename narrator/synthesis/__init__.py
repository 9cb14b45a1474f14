"""Getting the takes: the prepared book (``script``: its chunks, takes and their cache keys), the take cache
and its remote store, the scheduler that requests takes with retries and pacing, their cost, and the gate that
lets a chapter be built as soon as its takes are in.
"""
