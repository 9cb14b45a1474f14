"""The editor's desk: the book as the review page sees it (``desk``), the page and its server (``server``,
``page.html``), and new takes for the takes an editor rejected (``redo``). The decisions themselves live with the
job (``narrator.job.review``): ``run`` reads them, and never imports this package.
"""
