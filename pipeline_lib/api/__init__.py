"""The read API (``forecast-pipeline serve``): HTTP answers from the SQL tables and the reports
folder only; it never trains or fetches on request.

- :mod:`pipeline_lib.api.app`: the FastAPI application and its routes (``create_app``);
- :mod:`pipeline_lib.api.queries`: the read-only engine and the SQLAlchemy Core queries;
- :mod:`pipeline_lib.api.reports`: files of the reports folder, on any fsspec URL;
- :mod:`pipeline_lib.api.page`: the HTML page of a series;
- :mod:`pipeline_lib.api.models`: the shapes of the JSON answers (OpenAPI);
- :mod:`pipeline_lib.api.errors`: 4xx and 503 answers that name the parameter or the cause;
- :mod:`pipeline_lib.api.links`: browser URLs of report files (no FastAPI: the nightly imports it).

Importing this package imports nothing from FastAPI.
"""
