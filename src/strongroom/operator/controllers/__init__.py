"""Controllers: kopf-free loops that observe objects, call the pure reconcilers and act.

kopf delivers watch events to `Controller.observe`; everything after that (queueing, retries,
refresh schedules, I/O) happens here, so it can run and be tested without kopf.
"""
