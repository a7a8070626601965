"""Forecast evaluation: accuracy metrics and rolling-origin windows.

Modules: ``metrics`` (MAE, RMSE, MASE, sMAPE, pinball loss, interval coverage and width, and
``score_forecasts`` over a forecasts frame) and ``windows`` (``rolling_origins`` and
``origin_windows``, look-back and target windows as views over one array per series).
Nothing is imported here; import the module you need.
"""
