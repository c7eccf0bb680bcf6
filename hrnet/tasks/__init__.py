"""Task families: one module per task (``classification``, ``segmentation``, ``detection``,
``pose``, ``landmarks``), each a :class:`Task` registered with :func:`register_task`.

``get_task(name)`` finds a task by its configuration name; :mod:`hrnet.engine` drives training
and evaluation through it and knows no task by name.
"""

from hrnet.tasks.base import Task, get_task, register_task, task_names

__all__ = ["Task", "get_task", "register_task", "task_names"]
