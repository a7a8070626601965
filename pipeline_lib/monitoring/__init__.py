"""Monitoring: is the model still right for the data?

``drift`` measures input drift per series and feature, ``decay`` the error of published
forecasts whose targets have passed, ``prediction_drift`` the drift of tonight's predictions,
``monitor`` runs them for a night, and ``policy`` reads them into the retraining policy's
verdict.
"""
