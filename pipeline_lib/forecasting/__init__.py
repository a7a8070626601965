"""Forecasting: the models, the contest between them, and what is published.

``model/`` is the global quantile LSTM on its linear base (training, fine-tuning, checkpoints,
refits); ``baselines`` (their interface), ``naive``, ``linear_baseline``, ``statistical`` (with
``ets_arima`` and ``statistical_fits``) and ``origin_cache`` the baselines it must beat;
``situation`` is what a night sees of its models and ``retrain`` decides from it (with
``settings_fit``: whether a model still fits the settings) whether to train in full,
fine-tune or reuse, and ``tuning`` searches hyper-parameters; ``backtest`` scores every model
on the same windows, ``champion`` runs the night's contest, ``selection`` is the rule that
chooses per series and horizon bucket what is published and ``per_bucket`` applies it to every
series (on tonight's backtest and the ``evaluation_record`` of earlier nights) and builds the
published rows, which ``nightly_forecasts`` makes from tonight's forecasts of each model;
``registry`` keeps the champion and each night's selection, and ``selection_records`` the rows
that choice writes to SQL.
"""
