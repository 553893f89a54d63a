"""Pure SLA layer: business calendars, deadline arithmetic, the time source and the SLA planner
(which timer events a change causes). Firing due timers is cases/sweep.py, the ticker runtime/.

Nothing here imports FastAPI, SQLAlchemy or the layers above; it may use ``workflow``.
"""
