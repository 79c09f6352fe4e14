"""Maintenance rules as pure code: the task and alert life cycles, and operator decisions.

`decisions` defines what an operator can decide (the HumanDecision record and its
actions); `tasks` and `alerts` apply a decision to the current version of its target and
return the next version, or say why not (the transitions allowed from here). No I/O: the
agents that own tasks and alerts store what these return.
"""
