"""What the user wrote: the job spec (``spec``, read from YAML with the line of every key) and the editor's
review file beside it (``review``).
"""
