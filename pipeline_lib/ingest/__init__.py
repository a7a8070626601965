"""Ingest: what comes in each night, and the gate it passes before it counts.

``sources/`` fetches raw payloads (file drops, HTTP APIs, Open-Meteo) and parses them into
typed frames; ``landing`` lists the night's sources, lands each payload's bytes before parsing
and builds the night's batches (``batch``: what one fetch asks for and gives; ``file_drops``
the files dropped in a folder; ``weather_forecasts`` the weather forecasts as issued); ``gate``
validates every batch of a run before any is committed; ``curate`` commits the validated
batches to the curated Parquet data sets and reads them back.
"""
