"""From takes to files: a chapter's assembly, mastering and encoding (``assemble``, ``mastering``,
``writers``, ``parts``, ``segments``), the book's join and subtitles, the plan of files (``fileplan``) and the
build that carries it out (``builder``, ``outputs``, ``stages``).
"""
