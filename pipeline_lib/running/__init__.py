"""Running: what a run needs around the stages.

``night`` is one forecast run's context, built once and read by every stage; ``rerun`` answers
a night already done; ``backfill`` plans a backfill's dates and chunks; ``lease`` keeps one
writer per data folder and database; ``memory`` gives a stage's memory back between stages.
"""
