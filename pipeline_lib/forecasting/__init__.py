"""Forecasting: the models, the contest between them, and what is published.

``model/`` is the global quantile LSTM on its linear base (training, fine-tuning, checkpoints,
refits); ``baselines``, ``linear_baseline``, ``statistical`` and ``origin_cache`` the
baselines it must beat; ``retrain`` decides each night whether to train in full, fine-tune
or reuse, and ``tuning`` searches hyper-parameters; ``champion`` runs the night's backtest
contest, ``selection`` chooses per series and horizon bucket what is published (on tonight's
backtest and the ``evaluation_record`` of earlier nights), ``registry`` keeps the champion
and each night's selection, and ``selection_records`` the rows that choice writes to SQL.
"""
