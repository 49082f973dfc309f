"""Model sources, architecture adapters, artifact I/O."""
