"""The hook that ends every heavy stage: what the stage freed goes back to the system before
the next one runs (:func:`pipeline_lib.running.memory.release`), so the night's peak is one stage's,
not the sum of what each left with the allocators."""

from __future__ import annotations

from pipeline_lib.running import memory


def release_memory(task: object, task_run: object, state: object) -> None:
    memory.release()


# task options: the hook after the stage, whether it completed or failed
RELEASE = dict(on_completion=[release_memory], on_failure=[release_memory])
