"""Prediction: when will a sensor reach its datasheet limit? Pure computation, no I/O.

`trend` fits a robust trend with an interval, `series` keeps the recent history it fits,
`predictor` turns forecasts into `forecast` alerts (raised, updated, withdrawn). The
PredictionAgent (edge/agents/prediction.py) feeds it committed readings and stores its alerts.
"""
