"""One module per data source; each turns a path (or an installed package) into arrays or file records."""
