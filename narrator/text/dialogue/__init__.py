"""Dialogue: the quotations of a book (quotes.py) and who says each (attribution.py), for its cast."""
