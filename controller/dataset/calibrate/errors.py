"""The one error calibration raises: its message says what is wrong with the data and what to do."""


class CalibrationError(RuntimeError):
    pass
