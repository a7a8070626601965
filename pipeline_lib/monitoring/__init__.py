"""Monitoring: is the model still right for the data?

``drift`` measures input drift per series and feature, ``decay`` the error of published
forecasts whose targets have passed and the drift of tonight's predictions, ``monitor`` runs
both for a night, and ``policy`` reads them into the retraining policy's verdict.
"""
