"""imagenot: contrast datasets from WordNet and web captions, and whether model rankings survive them."""

__version__ = "0.1.0"
