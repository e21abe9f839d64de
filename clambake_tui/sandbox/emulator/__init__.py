"""An embedded GitHub REST emulator served over real HTTP on 127.0.0.1 (tests, --demo, rehearsal)."""

from clambake_tui.sandbox.emulator.emulator import Emulator, new_token
from clambake_tui.sandbox.emulator.faults import Fault, FaultKind
from clambake_tui.sandbox.emulator.limits import SecondaryLimits
from clambake_tui.sandbox.emulator.server import RequestRecord
from clambake_tui.sandbox.emulator.workflows import (
    BUNDLING_WORKFLOW,
    JobSpec,
    RunContext,
    StepsFactory,
    StepSpec,
    register_workflow_steps,
    unregister_workflow_steps,
)

__all__ = [
    "Emulator",
    "Fault",
    "FaultKind",
    "SecondaryLimits",
    "RequestRecord",
    "register_workflow_steps",
    "unregister_workflow_steps",
    "StepsFactory",
    "RunContext",
    "JobSpec",
    "StepSpec",
    "BUNDLING_WORKFLOW",
    "new_token",
]
