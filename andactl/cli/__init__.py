"""Command-line interface (click + rich): data on stdout, progress and logs on stderr."""
