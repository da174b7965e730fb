"""Reports a person reads: markdown, and a self-contained HTML rendering of it."""
