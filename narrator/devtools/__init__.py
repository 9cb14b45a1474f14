"""Tools for narrator's own tests, samples and benchmarks: an EPUB builder, a fake speech server,
a picture maker for covers. Shipped with the package so `make bench` and users can run them too."""
