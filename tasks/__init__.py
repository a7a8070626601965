"""Prefect tasks: thin wrappers over pipeline_lib, with retries where I/O can fail, and tags."""
