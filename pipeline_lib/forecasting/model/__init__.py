"""The forecasting model: a global multi-horizon quantile LSTM.

Modules: ``scaling`` (per-series scalers), ``windows`` (unfold windowing, time-ordered split),
``lstm`` (the nn.Module), ``base`` (its linear base and the gate on the network's correction),
``train`` (``train_full`` and the training steps), ``finetune`` (``fine_tune``), ``trained``
(the ``TrainedModel`` record), ``checkpoint`` (safetensors + JSON registry, point-in-time
selection), ``forecast`` (``predict``), ``calendar`` (future dates and their calendar features),
``threads`` (torch's threads off the main thread) and ``testing`` (synthetic feature frames).
Nothing is imported here, so importing the package stays cheap; import the module you need.
"""
