"""Forecast evaluation: accuracy metrics, the scoring of forecast frames and rolling-origin
windows, pure NumPy and pandas (the forecasting's backtest and the monitoring read them).

Modules: ``metrics`` (MAE, RMSE, MASE, sMAPE, pinball loss, interval coverage and width),
``scoring`` (``score_forecasts`` and ``score_rows`` over a forecasts frame) and ``windows``
(``rolling_origins`` and ``origin_windows``, look-back and target windows as views over one
array per series). Nothing is imported here; import the module you need.
"""
