"""WordNet 3.0 access (offline, through NLTK), reference class sets and contrast-class selection."""
