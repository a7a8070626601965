"""Prefect tasks: thin wrappers over pipeline_lib, with retries where I/O can fail.

No task carries tags: Prefect asks its API for the concurrency slots of a tagged task's tags
before the task runs, and on the local API's SQLite file that write fails with "database is
locked" while another is under way and is retried after 2, 4, 8 s (4-6 times a night on the
bundled sample: the nightly took 42-45 s with tags, 34 s without). Runs are kept apart by the
pipeline's own slot and writer lease (flows.slot)."""
