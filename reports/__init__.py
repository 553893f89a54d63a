"""Read models from the case log (merchants, hotspots, SLA, satisfaction) and the supervision that
raises merchant flags."""
