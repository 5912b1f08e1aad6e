"""What makes a price a valuation a person can judge, beside the forest's number:

- ``artefact``: the bundle's ``valuation.json`` (interval calibration, zone grid, the
  combinations seen in training), plain JSON that cannot run code;
- ``interval``: the calibrated prediction interval;
- ``zones``: the area's median €/m², from aggregates of the training homes;
- ``novelty``: warnings when a home is unlike anything the model was trained on;
- ``explanation``: how each feature moved the price from the forest's average.
"""
