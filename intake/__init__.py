"""Intake: classify complaints, set their priority, choose a mediator, judge merchants.

Pure: rules are loaded from YAML files and applied to plain values. The case layer
(cases/triage.py, reports/) supplies the facts and records the results.
"""
