"""TTL out and in on the shared clock: line backends (`base.py`, one file per kind), the edge plan
(`schedule.py`), the output thread and input log (`session.py`), the factory (`factory.py`)."""
