"""From a source to what is said: the document model, the readers (``sources``), normalising for speech
(``normalise``), the chunker within the endpoint's limits, and takes (chunks grouped into requests).
"""
