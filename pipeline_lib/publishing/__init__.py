"""Publishing: what a night writes for BI tools and shows people.

``publish`` writes a night's rows to the SQL tables and its summary to reports/; ``artifacts``
renders what a run shows in Prefect as markdown, ``plot`` the forecast plot, with
``drift_summary`` and ``backfill_summary`` for the drift alerts and a backfill's dates;
``report`` reads back what a run wrote, for the command line.
"""
