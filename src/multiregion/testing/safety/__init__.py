"""A Jepsen-style check of a ReplicatedStore's safety under faults.

A workload of concurrent writers holding fencing tokens and a promoter (``workload``), a
nemesis that takes regions down, partitions them and kills writer processes (``nemesis``), a
recorded history of every operation's invocation and completion (``history``), and a checker
that states what was violated (``checker``): stale-epoch writes accepted after a promote
completed, duplicate epochs, acknowledged writes lost, writes lost without a divergence-log
entry, replicas not converged after healing. ``trial.run_trial`` puts them together; any
store whose test setup provides the levers (``Levers``) can be checked.
"""

from multiregion.testing.safety.checker import Violation, check
from multiregion.testing.safety.history import History, Op
from multiregion.testing.safety.nemesis import Levers, Nemesis
from multiregion.testing.safety.trial import TrialResult, TrialSettings, run_trial

__all__ = [
    "History",
    "Levers",
    "Nemesis",
    "Op",
    "TrialResult",
    "TrialSettings",
    "Violation",
    "check",
    "run_trial",
]
