"""Zero-shot super-resolution (ZSSR): engine, job runner and web service."""
