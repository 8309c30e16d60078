"""The embedded demo: the whole study in miniature on data that installs from the package registries."""
