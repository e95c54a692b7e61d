"""The audit report of one execution, read from its Step Functions history.

``history`` walks the events, ``report`` reads them into the report model (``build_report``),
``render`` shows a report or a plan (terminal table, Markdown). Nothing here calls AWS.
"""
