"""Controllers: loops that observe objects, call the pure reconcilers and act.

The watches (operator/listwatch.py) deliver events to `Controller.observe`; everything after that
(queueing, retries, refresh schedules, I/O) happens here, so it can run and be tested without a watch.
"""
